// Command audit-agent is the example deployment's compliance agent: it reads
// audit events as JSON lines on standard input and appends each to a log
// file, chained to the previous line by its SHA-256.
package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
)

func main() {
	out := flag.String("log", "audit.log", "file to append chained events to")
	flag.Parse()
	f, err := os.OpenFile(*out, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, "audit-agent:", err)
		os.Exit(1)
	}
	defer f.Close()
	prev := make([]byte, sha256.Size)
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		var event json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &event); err != nil {
			fmt.Fprintln(os.Stderr, "audit-agent: skipping a line that is not JSON")
			continue
		}
		line, _ := json.Marshal(map[string]any{"prev": hex.EncodeToString(prev), "event": event})
		sum := sha256.Sum256(line)
		prev = sum[:]
		if _, err := f.Write(append(line, '\n')); err != nil {
			fmt.Fprintln(os.Stderr, "audit-agent:", err)
			os.Exit(1)
		}
	}
}

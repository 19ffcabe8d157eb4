// Command probe-agent is a gateway test agent: it writes a testprobe
// report to --report when it starts, then appends every audit event line
// it reads on standard input to --events.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"

	"github.com/trustgate/trustgate/gateway/internal/testprobe"
)

var marker = "unset"

func main() {
	report := flag.String("report", "", "file to write the start report to")
	events := flag.String("events", "", "file to append audit events to")
	flag.Parse()
	if *report != "" {
		if err := testprobe.Write(*report, marker); err != nil {
			fmt.Fprintln(os.Stderr, "probe-agent:", err)
			os.Exit(1)
		}
	}
	var out *os.File
	if *events != "" {
		f, err := os.OpenFile(*events, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			fmt.Fprintln(os.Stderr, "probe-agent:", err)
			os.Exit(1)
		}
		out = f
	}
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		if out != nil {
			fmt.Fprintln(out, sc.Text())
		}
	}
}

// Command probe-plugin is a gateway test plugin: it writes a testprobe
// report to --report when it starts, and answers every hook with its
// marker as the verdict's reason.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/trustgate/trustgate/gateway/internal/testprobe"
	"github.com/trustgate/trustgate/plugin/pluginpb"
	"github.com/trustgate/trustgate/plugin/sdk"
)

// marker is set at build time (-ldflags -X main.marker=...).
var marker = "unset"

type hooks struct{}

// OnRequest allows, with the marker as the reason; a body that says
// PROBE-HANG never gets an answer, one that says PROBE-CRASH kills the
// plugin, and one that says PROBE-REROUTE is rewritten to another model.
func (hooks) OnRequest(_ context.Context, r *pluginpb.Request) (*pluginpb.Verdict, error) {
	switch {
	case bytes.Contains(r.GetBody(), []byte("PROBE-HANG")):
		time.Sleep(time.Hour)
	case bytes.Contains(r.GetBody(), []byte("PROBE-CRASH")):
		os.Exit(3)
	case bytes.Contains(r.GetBody(), []byte("PROBE-REROUTE")):
		return &pluginpb.Verdict{Action: pluginpb.Verdict_REWRITE, Body: []byte(`{"model":"claude-sonnet-4-5","messages":[]}`)}, nil
	}
	return &pluginpb.Verdict{Action: pluginpb.Verdict_ALLOW, Reason: marker}, nil
}

func (hooks) OnResponse(context.Context, *pluginpb.Response) (*pluginpb.Verdict, error) {
	return &pluginpb.Verdict{Action: pluginpb.Verdict_ALLOW, Reason: marker}, nil
}

func main() {
	report := flag.String("report", "", "file to write the start report to")
	flag.Parse()
	if *report != "" {
		if err := testprobe.Write(*report, marker); err != nil {
			fmt.Fprintln(os.Stderr, "probe-plugin:", err)
			os.Exit(1)
		}
	}
	sdk.Serve(hooks{})
}

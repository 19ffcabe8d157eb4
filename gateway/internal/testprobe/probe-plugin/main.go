// Command probe-plugin is a gateway test plugin: it writes a testprobe
// report to --report when it starts, and answers every hook with its
// marker as the verdict's reason.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/trustgate/trustgate/gateway/internal/testprobe"
	"github.com/trustgate/trustgate/plugin/pluginpb"
	"github.com/trustgate/trustgate/plugin/sdk"
)

// marker is set at build time (-ldflags -X main.marker=...).
var marker = "unset"

type hooks struct{}

func (hooks) OnRequest(context.Context, *pluginpb.Request) (*pluginpb.Verdict, error) {
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

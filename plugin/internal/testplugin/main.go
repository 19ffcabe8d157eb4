// Command testplugin is the plugin package's test plugin. Its OnRequest
// does what the request path says:
//
//	/env          ALLOW, reason: {"env": os.Environ(), "args": os.Args} as JSON
//	/block        BLOCK "blocked"
//	/rewrite      REWRITE with the body in upper case
//	/panic        panics
//	/nil          returns no verdict and no error
//	/empty        REWRITE with no body
//	/noaction     an empty Verdict: no action, reason or body
//	/unknown      an action the protocol does not have
//	/print        prints a line to os.Stdout and os.Stderr, ALLOW
//	/exit         exits the process with status 3 (the call fails)
//
// and ALLOW for anything else. OnResponse returns ALLOW.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/trustgate/trustgate/plugin/pluginpb"
	"github.com/trustgate/trustgate/plugin/sdk"
)

type hooks struct{}

func (hooks) OnRequest(_ context.Context, r *pluginpb.Request) (*pluginpb.Verdict, error) {
	switch r.GetPath() {
	case "/env":
		b, err := json.Marshal(map[string][]string{"env": os.Environ(), "args": os.Args})
		return &pluginpb.Verdict{Action: pluginpb.Verdict_ALLOW, Reason: string(b)}, err
	case "/block":
		return sdk.Block("blocked"), nil
	case "/rewrite":
		return sdk.Rewrite(bytes.ToUpper(r.GetBody())), nil
	case "/panic":
		panic("test plugin panics")
	case "/nil":
		return nil, nil
	case "/empty":
		return sdk.Rewrite(nil), nil
	case "/noaction":
		return &pluginpb.Verdict{}, nil
	case "/unknown":
		return &pluginpb.Verdict{Action: 7}, nil
	case "/print":
		fmt.Println("printed to stdout")
		fmt.Fprintln(os.Stderr, "printed to stderr")
	case "/exit":
		os.Exit(3)
	}
	return sdk.Allow(), nil
}

func (hooks) OnResponse(context.Context, *pluginpb.Response) (*pluginpb.Verdict, error) {
	return sdk.Allow(), nil
}

func main() {
	fmt.Fprintln(os.Stderr, "testplugin starting")
	sdk.Serve(hooks{})
}

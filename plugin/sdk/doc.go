// Package sdk is the Go SDK for trustgate-gateway plugins: implement
// plugin.Hooks and call Serve from main.
//
//	type guard struct{}
//
//	func (guard) OnRequest(ctx context.Context, r *pluginpb.Request) (*pluginpb.Verdict, error) {
//		if bytes.Contains(r.GetBody(), []byte("rm -rf")) {
//			return sdk.Block("shell command in prompt"), nil
//		}
//		return sdk.Allow(), nil
//	}
//
//	func (guard) OnResponse(ctx context.Context, r *pluginpb.Response) (*pluginpb.Verdict, error) {
//		return sdk.Allow(), nil
//	}
//
//	func main() { sdk.Serve(guard{}) }
//
// Build verdicts with Allow, Block and Rewrite: the gateway refuses a
// Verdict without an action (the zero ACTION_UNSPECIFIED, as in an empty
// pluginpb.Verdict) as a failed call, never as an ALLOW.
//
// The gateway starts the program itself; run by hand, Serve exits with a
// message saying so. A hook that panics fails that call with codes.Internal
// and the plugin keeps serving. Logs go to os.Stderr, which the gateway
// collects.
package sdk

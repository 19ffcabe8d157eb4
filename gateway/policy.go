package gateway

import (
	"time"

	"github.com/trustgate/trustgate/policy"
	"github.com/trustgate/trustgate/verifier"
)

// loadSignedPolicy is the verifier's policy loading, with the rollback
// state in the gateway's data folder.
func loadSignedPolicy(o Options, deployment, statePath string, now time.Time) (*policy.Policy, error) {
	return verifier.Policy(o.Policy, o.PolicyBundle, o.Trust, deployment, statePath, now)
}

package policy

import (
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/trustgate/trustgate/attest"
	"github.com/trustgate/trustgate/bundle"

	"github.com/trustgate/trustgate/internal/atomicfile"
	"github.com/trustgate/trustgate/internal/readfile"
)

// Errors of LoadSigned, one per way a policy is refused.
var (
	ErrUnsigned        = errors.New("policy is not signed")
	ErrUntrustedSigner = bundle.ErrUntrustedSigner
	ErrNotPolicy       = errors.New("bundle does not attest a trustgate policy")
	ErrTampered        = errors.New("policy does not match its signature (changed after signing)")
	ErrRollback        = errors.New("policy is older than the last one accepted")
	ErrWrongDeployment = errors.New("policy governs another deployment")
)

// Statement is the in-toto statement that signs a policy: its subject is
// the policy file (by name and SHA-256), its predicate names the policy,
// version and expiry.
func Statement(name string, data []byte, p *Policy) (*attest.Statement, error) {
	pred, err := json.Marshal(map[string]any{
		"name": p.Metadata.Name, "version": p.Version, "expires": p.Expires,
	})
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	return attest.NewStatement(attest.PredicatePolicy, pred,
		attest.Subject{Name: filepath.Base(name), Digest: map[string]string{"sha256": hex.EncodeToString(sum[:])}})
}

// TrustRoot is who may sign policies: public keys, keyless identities, and
// the Sigstore trust material (certificate authorities, logs, timestamp
// authorities, as in a trusted_root.json) that keyless signatures are
// checked against.
type TrustRoot struct {
	Keys       []crypto.PublicKey
	Identities []Identity
	// Material is needed for keyless signers; nil allows keys only.
	Material root.TrustedMaterial
}

// ErrTrustRoot means the trust root itself is malformed.
var ErrTrustRoot = errors.New("invalid policy trust root")

// validate checks each identity as the policy loader checks its own.
func (tr TrustRoot) validate() error {
	for i := range tr.Identities {
		if ps := tr.Identities[i].Check(); len(ps) > 0 {
			return fmt.Errorf("%w: identity %d: %s: %w", ErrTrustRoot, i, ps[0].Field, ps[0].Err)
		}
	}
	return nil
}

// signers are the trust root as bundle signers: each key alone (trust
// material that resolves other keys, a component signer's say, must never
// sign a policy), and each identity against the trust material.
func (tr TrustRoot) signers() []bundle.Signer {
	var out []bundle.Signer
	for _, k := range tr.Keys {
		out = append(out, bundle.Signer{Key: k})
	}
	for i := range tr.Identities {
		out = append(out, bundle.Signer{Identity: &tr.Identities[i]})
	}
	return out
}

// LoadSigned checks a signed policy for the deployment called deployment
// (the stack manifest's metadata.name) and returns it. The bundle goes
// through the same verifier as every attestation (bundle.Parse and
// bundle.Unbound: limits, payload type, strict statement, signature) under
// the trust root; it must attest a trustgate policy and name exactly these
// bytes. The policy must parse, not be expired at now, govern that
// deployment (its metadata.name is the deployment's), and not be older
// than the last policy of that name state accepted. Only then is state
// updated, so that a policy for another deployment can neither pass nor
// move the rollback state. A nil state skips the rollback check: only for
// tools that never decide what runs.
//
// Errors wrap this package's sentinel for the kind of refusal and, where
// the bundle verifier refused it, the bundle package's too (ErrTooLarge,
// ErrStatement, ErrSignature, ...).
func LoadSigned(file string, data, bundleJSON []byte, tr TrustRoot, deployment string, state *State, now time.Time) (*Policy, error) {
	if now.IsZero() {
		return nil, errors.New("loading a signed policy needs the current time")
	}
	if deployment == "" {
		return nil, errors.New("loading a signed policy needs the name of the deployment it governs")
	}
	if err := tr.validate(); err != nil {
		return nil, err
	}
	if len(bundleJSON) == 0 {
		return nil, ErrUnsigned
	}
	b, err := bundle.Parse(bundleJSON)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnsigned, err)
	}
	res, err := verifySigner(b, tr)
	if err != nil {
		return nil, err
	}
	if res.Statement.Type != attest.StatementType || res.PredicateType != attest.PredicatePolicy {
		return nil, ErrNotPolicy
	}
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])
	if len(res.Statement.Subject) != 1 || res.Statement.Subject[0].Digest["sha256"] != want {
		return nil, fmt.Errorf("%w: %s is sha256:%s", ErrTampered, file, want)
	}
	p, err := Parse(file, data, Options{})
	if err != nil {
		return nil, err
	}
	if !now.Before(p.expires) {
		return nil, fmt.Errorf("%w: at %s", ErrExpired, p.expires.UTC().Format(time.RFC3339))
	}
	if p.Metadata.Name != deployment {
		return nil, fmt.Errorf("%w: the policy is for %q, the deployment is %q", ErrWrongDeployment, p.Metadata.Name, deployment)
	}
	if state != nil {
		if err := state.accept(p); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// verifySigner finds a signer of the trust root under which the bundle
// verifies. The artifact is bound afterwards (ErrTampered), so that a
// changed policy and an untrusted signer are told apart.
func verifySigner(b *sgbundle.Bundle, tr TrustRoot) (*bundle.Result, error) {
	last := errors.New("the trust root names no signer")
	for _, s := range tr.signers() {
		res, err := bundle.Unbound(b, s, bundle.Options{Material: tr.Material})
		if err == nil {
			return res, nil
		}
		last = err
	}
	if errors.Is(last, bundle.ErrPayloadType) {
		return nil, fmt.Errorf("%w: %w", ErrNotPolicy, last)
	}
	return nil, fmt.Errorf("policy is not signed by a trusted signer: %w: %w", ErrUntrustedSigner, last)
}

// State remembers, for each policy name, the last policy a verifier
// accepted (its version and digest) in a small JSON file, so that an older
// signed policy cannot be replayed. Since a policy governs only the
// deployment of its own name (LoadSigned), one state file can serve
// several deployments, and a policy for one never moves another's version.
// Deleting the file forgets the versions; keep it where the verifier's own
// configuration is kept.
type State struct {
	// Path is the state file; it is created on first use, beside a lock
	// file (Path + ".lock") that serializes verifiers sharing it.
	Path string
}

// stateLockWait is how long LoadSigned waits for another verifier to
// release the state file: far longer than an update takes, far shorter than
// a hang.
const stateLockWait = 30 * time.Second

type acceptedPolicy struct {
	Version uint64 `json:"version"`
	Digest  string `json:"digest"`
}

// stateFile is the state file's content. Accepted is the single entry of
// the format before policies were kept by name; it is read as the entry of
// its name and not written again.
type stateFile struct {
	Policies map[string]acceptedPolicy `json:"policies"`
	Accepted *struct {
		acceptedPolicy
		Name string `json:"name"`
	} `json:"accepted,omitempty"`
}

// accept checks p against the last accepted policy of its name and records
// it: a lower version, or the same version with other content, is
// ErrRollback.
func (s *State) accept(p *Policy) error {
	unlock, err := atomicfile.Lock(s.Path+".lock", stateLockWait)
	if err != nil {
		return fmt.Errorf("policy state %q: %w", s.Path, err)
	}
	defer unlock()
	st, err := s.read()
	if err != nil {
		return err
	}
	name := p.Metadata.Name
	last, seen := st.Policies[name]
	cur := acceptedPolicy{Version: p.Version, Digest: p.source.Digest.String()}
	switch {
	case seen && cur.Version < last.Version:
		return fmt.Errorf("%w: %q version %d, last accepted version %d", ErrRollback, name, cur.Version, last.Version)
	case seen && cur.Version == last.Version && cur.Digest != last.Digest:
		return fmt.Errorf("%w: %q version %d was accepted with other content; raise the version", ErrRollback, name, cur.Version)
	case seen && cur.Version == last.Version:
		return nil
	}
	st.Policies[name] = cur
	out, err := json.MarshalIndent(stateFile{Policies: st.Policies}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(s.Path), 0o700); err != nil {
		return fmt.Errorf("policy state %q: %w", s.Path, err)
	}
	return atomicfile.Write(s.Path, out, 0o600)
}

// read returns the accepted policies by name (none when there is no state
// file yet). A damaged file is an error, never a reset to zero.
func (s *State) read() (stateFile, error) {
	st := stateFile{Policies: map[string]acceptedPolicy{}}
	data, err := readfile.Read(s.Path, 1<<20)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("policy state %q: %w", s.Path, err)
	}
	damaged := fmt.Errorf("policy state %q: not readable; refusing rather than forgetting the last versions", s.Path)
	var file stateFile
	if err := json.Unmarshal(data, &file); err != nil || (file.Policies == nil && file.Accepted == nil) {
		return st, damaged
	}
	for name, a := range file.Policies {
		if name == "" || a.Version == 0 {
			return st, damaged
		}
		st.Policies[name] = a
	}
	if a := file.Accepted; a != nil {
		if a.Name == "" || a.Version == 0 {
			return st, damaged
		}
		if cur, ok := st.Policies[a.Name]; !ok || cur.Version < a.Version {
			st.Policies[a.Name] = a.acceptedPolicy
		}
	}
	return st, nil
}

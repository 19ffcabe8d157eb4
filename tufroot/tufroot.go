// Package tufroot gets a Sigstore trusted root (trusted_root.json: the
// certificate authorities, transparency logs and timestamp authorities that
// keyless signatures are checked against) through TUF, as cosign and
// sigstore-go do, and keeps it in a cache folder that later checks can use
// with no network at all.
//
// Update runs the TUF client workflow (go-tuf's updater) against a
// repository: every root version from the trust anchor up, then timestamp,
// snapshot and targets, each signed by the keys the root in force names,
// none expired, none older than what the cache already holds, and the
// target's length and hashes as the targets metadata states them. Load
// repeats every one of those checks from the cache alone, against the clock,
// so that a cache whose metadata has expired is refused rather than used;
// it is what the gateway and the admission webhook call, which never fetch
// while they verify.
//
// The trust anchor is sigstore-go's embedded root of the public-good
// instance, or, for another instance, the root.json the caller gave Update
// (kept in the cache; whoever can write the cache can change it, as with
// every TUF client's local metadata).
package tufroot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	sgtuf "github.com/sigstore/sigstore-go/pkg/tuf"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"

	"github.com/trustgate/trustgate/internal/atomicfile"
	"github.com/trustgate/trustgate/internal/readfile"
)

// TargetName is the TUF target that holds the Sigstore trusted root.
const TargetName = "trusted_root.json"

// Errors, one per way a repository or a cache is refused. Each wraps the
// go-tuf error that found it.
var (
	// ErrNoCache: the cache holds no trusted root yet.
	ErrNoCache = errors.New("no trusted root in the TUF cache")
	// ErrExpired: a metadata file (root, timestamp, snapshot or targets)
	// has expired: a freeze attack, or a cache not updated in time.
	ErrExpired = errors.New("TUF metadata expired")
	// ErrRollback: the repository offered a version older than one already
	// trusted, or one other than the version the metadata above it names.
	ErrRollback = errors.New("TUF metadata rolled back")
	// ErrTampered: a file does not match its signed length and hashes, or
	// metadata is not signed by the keys its delegator names.
	ErrTampered = errors.New("TUF file does not match its signed metadata")
	// ErrUnreachable: the repository could not be read.
	ErrUnreachable = errors.New("TUF repository unreachable")
	// ErrRepository: the repository or the cache is malformed.
	ErrRepository = errors.New("bad TUF repository")
)

// Repository is a TUF repository and the trust anchor its metadata chain
// starts from.
type Repository struct {
	// Mirror is the repository's base URL (https, or http: TUF needs no
	// secure transport).
	Mirror string
	// Root is the initial root.json, trusted as given.
	Root []byte
}

// PublicGood is Sigstore's public-good instance, anchored in the root
// embedded in sigstore-go.
func PublicGood() Repository {
	return Repository{Mirror: sgtuf.DefaultMirror, Root: sgtuf.DefaultRoot()}
}

// MaxRootSize bounds a root.json: go-tuf's own bound.
const MaxRootSize = 512_000

// Status describes a verified trusted root and the metadata it came with.
type Status struct {
	Mirror           string `json:"mirror"`
	RootVersion      int64  `json:"rootVersion"`
	TimestampVersion int64  `json:"timestampVersion"`
	// Expires is the earliest expiry of the root, timestamp, snapshot and
	// targets metadata: after it, Load refuses the cache.
	Expires time.Time `json:"expires"`
	// SHA256 is the trusted_root.json's digest, in hex.
	SHA256 string `json:"sha256"`
}

// DefaultDir is the cache folder: trustgate/tuf under the user's cache
// folder ($XDG_CACHE_HOME, or ~/.cache).
func DefaultDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "trustgate", "tuf"), nil
}

// The cache folder's layout.
const (
	repoFile    = "repository.json" // which repository, and its anchor's digest
	anchorFile  = "anchor.json"     // the anchor, for a repository other than the public good
	metadataDir = "metadata"        // go-tuf's local metadata: the newest of each role
	rootsDir    = "roots"           // every root version above the anchor, N.root.json
	targetsDir  = "targets"         // go-tuf's local targets
	lockFile    = ".lock"
	lockWait    = 30 * time.Second
	// maxFile bounds a file read from the cache: go-tuf's own largest
	// default (targets metadata, 5 MB).
	maxFile = 5_000_000
)

type repoRecord struct {
	Mirror string `json:"mirror"`
	// RootSHA256 is the anchor's digest; for the public good, the
	// embedded root's at the time of the update.
	RootSHA256 string `json:"rootSHA256"`
	PublicGood bool   `json:"publicGood,omitempty"`
}

// Update refreshes the cache in dir from repo, or, when repo is nil, from
// the repository the cache was last updated from (the public good when it
// has none), and returns the verified trusted root. A repository other
// than the one the cache holds starts a new cache. Nothing in the cache
// changes unless the whole update verifies.
func Update(ctx context.Context, dir string, repo *Repository) (*root.TrustedRoot, Status, error) {
	unlock, err := atomicfile.Lock(filepath.Join(dir, lockFile), lockWait)
	if err != nil {
		return nil, Status{}, fmt.Errorf("TUF cache: %w", err)
	}
	defer unlock()
	cur, curRepo, err := readRecord(dir)
	if err != nil && !errors.Is(err, ErrNoCache) {
		return nil, Status{}, err
	}
	fresh := err != nil
	switch {
	case repo == nil && fresh:
		pg := PublicGood()
		repo = &pg
	case repo == nil:
		repo = &curRepo
	default:
		if err := checkRepository(*repo); err != nil {
			return nil, Status{}, err
		}
		fresh = fresh || record(*repo) != cur
	}
	staging, err := os.MkdirTemp(dir, ".update-")
	if err != nil {
		return nil, Status{}, fmt.Errorf("TUF cache: %w", err)
	}
	defer os.RemoveAll(staging)
	if !fresh {
		// The metadata held so far is what a rollback is measured against.
		for _, sub := range []string{metadataDir, targetsDir} {
			if err := copyDir(filepath.Join(dir, sub), filepath.Join(staging, sub)); err != nil {
				return nil, Status{}, err
			}
		}
	}
	f := newFetcher(ctx)
	tr, st, up, err := refresh(*repo, staging, f)
	if err != nil {
		return nil, Status{}, err
	}
	if err := writeRoots(staging, *repo, f, up.GetTrustedMetadataSet().Root.Signed.Version); err != nil {
		return nil, Status{}, err
	}
	if err := install(dir, staging, *repo); err != nil {
		return nil, Status{}, err
	}
	return tr, st, nil
}

// refresh runs the TUF client workflow in the folder staging and gets the
// trusted root target.
func refresh(repo Repository, staging string, f *fetcher) (*root.TrustedRoot, Status, *updater.Updater, error) {
	cfg, err := config.New(repo.Mirror, repo.Root)
	if err != nil {
		return nil, Status{}, nil, fmt.Errorf("%w: %s: %w", ErrRepository, repo.Mirror, err)
	}
	cfg.LocalMetadataDir = filepath.Join(staging, metadataDir)
	cfg.LocalTargetsDir = filepath.Join(staging, targetsDir)
	cfg.PrefixTargetsWithHash = true
	cfg.Fetcher = f
	up, err := updater.New(cfg)
	if err == nil {
		err = up.Refresh()
	}
	if err != nil {
		return nil, Status{}, nil, classify(repo.Mirror, err)
	}
	ti, err := up.GetTargetInfo(TargetName)
	if err != nil {
		return nil, Status{}, nil, classify(repo.Mirror, err)
	}
	_, data, err := up.FindCachedTarget(ti, "")
	if err == nil && data == nil {
		_, data, err = up.DownloadTarget(ti, "", "")
	}
	if err != nil {
		return nil, Status{}, nil, classify(repo.Mirror, err)
	}
	trusted := up.GetTrustedMetadataSet()
	tr, st, err := result(repo.Mirror, &trusted, data)
	return tr, st, up, err
}

// Load gets the trusted root from the cache in dir alone, with every check
// of the TUF workflow but the download made again at now: the root chain
// from the anchor, the signatures, the versions each file names for the
// next, the expiry of every file, and the target's length and hashes.
func Load(dir string, now time.Time) (*root.TrustedRoot, Status, error) {
	if unlock, err := atomicfile.RLock(filepath.Join(dir, lockFile), lockWait); err == nil {
		defer unlock()
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, Status{}, fmt.Errorf("TUF cache: %w", err)
	}
	_, repo, err := readRecord(dir)
	if err != nil {
		return nil, Status{}, err
	}
	trusted, err := trustedmetadata.New(repo.Root)
	if err != nil {
		return nil, Status{}, cacheError(dir, classify(repo.Mirror, err))
	}
	trusted.RefTime = now.UTC()
	for v := trusted.Root.Signed.Version + 1; ; v++ {
		data, err := readfile.Read(filepath.Join(dir, rootsDir, strconv.FormatInt(v, 10)+".root.json"), maxFile)
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		if err == nil {
			_, err = trusted.UpdateRoot(data)
		}
		if err != nil {
			return nil, Status{}, cacheError(dir, classify(repo.Mirror, fmt.Errorf("root version %d: %w", v, err)))
		}
	}
	steps := []struct {
		role   string
		update func([]byte) error
	}{
		{metadata.TIMESTAMP, func(b []byte) error { _, err := trusted.UpdateTimestamp(b); return err }},
		{metadata.SNAPSHOT, func(b []byte) error { _, err := trusted.UpdateSnapshot(b, false); return err }},
		{metadata.TARGETS, func(b []byte) error {
			_, err := trusted.UpdateDelegatedTargets(b, metadata.TARGETS, metadata.ROOT)
			return err
		}},
	}
	for _, s := range steps {
		data, err := readfile.Read(filepath.Join(dir, metadataDir, s.role+".json"), maxFile)
		if errors.Is(err, os.ErrNotExist) {
			return nil, Status{}, fmt.Errorf("%w: %s has no %s.json: run trustgate trust-root update", ErrNoCache, dir, s.role)
		}
		if err == nil {
			err = s.update(data)
		}
		if err != nil {
			return nil, Status{}, cacheError(dir, classify(repo.Mirror, fmt.Errorf("%s.json: %w", s.role, err)))
		}
	}
	ti, ok := trusted.Targets[metadata.TARGETS].Signed.Targets[TargetName]
	if !ok {
		return nil, Status{}, fmt.Errorf("%w: %s: the top-level targets name no %s (delegated targets are not read from a cache)", ErrRepository, repo.Mirror, TargetName)
	}
	data, err := readfile.Read(filepath.Join(dir, targetsDir, url.PathEscape(TargetName)), maxFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, Status{}, fmt.Errorf("%w: %s has no %s: run trustgate trust-root update", ErrNoCache, dir, TargetName)
	}
	if err == nil {
		err = ti.VerifyLengthHashes(data)
	}
	if err != nil {
		return nil, Status{}, cacheError(dir, classify(repo.Mirror, fmt.Errorf("%s: %w", TargetName, err)))
	}
	return result(repo.Mirror, trusted, data)
}

// cacheError tells how to recover from a cache that no longer verifies.
func cacheError(dir string, err error) error {
	return fmt.Errorf("TUF cache %s: %w (trustgate trust-root update refreshes it)", dir, err)
}

// result parses the verified target and describes it.
func result(mirror string, trusted *trustedmetadata.TrustedMetadata, data []byte) (*root.TrustedRoot, Status, error) {
	tr, err := root.NewTrustedRootFromJSON(data)
	if err != nil {
		return nil, Status{}, fmt.Errorf("%w: %s: %s is signed but is not a Sigstore trusted root: %w", ErrRepository, mirror, TargetName, err)
	}
	sum := sha256.Sum256(data)
	st := Status{
		Mirror: mirror, RootVersion: trusted.Root.Signed.Version, TimestampVersion: trusted.Timestamp.Signed.Version,
		Expires: trusted.Root.Signed.Expires, SHA256: hex.EncodeToString(sum[:]),
	}
	for _, t := range []time.Time{trusted.Timestamp.Signed.Expires, trusted.Snapshot.Signed.Expires, trusted.Targets[metadata.TARGETS].Signed.Expires} {
		if t.Before(st.Expires) {
			st.Expires = t
		}
	}
	return tr, st, nil
}

// classify wraps a go-tuf error in the trustgate error for its kind.
func classify(mirror string, err error) error {
	kind := ErrRepository
	switch {
	case errors.Is(err, &metadata.ErrExpiredMetadata{}):
		kind = ErrExpired
	case errors.Is(err, &metadata.ErrBadVersionNumber{}):
		kind = ErrRollback
	case errors.Is(err, &metadata.ErrLengthOrHashMismatch{}), errors.Is(err, &metadata.ErrUnsignedMetadata{}),
		errors.Is(err, &metadata.ErrDownloadLengthMismatch{}):
		kind = ErrTampered
	case errors.Is(err, &metadata.ErrDownloadHTTP{}), errors.Is(err, errFetch):
		kind = ErrUnreachable
	}
	return fmt.Errorf("%w: %s: %w", kind, mirror, err)
}

func checkRepository(repo Repository) error {
	u, err := url.Parse(repo.Mirror)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%w: mirror %q: want an http or https URL", ErrRepository, repo.Mirror)
	}
	if _, err := metadata.Root().FromBytes(repo.Root); err != nil {
		return fmt.Errorf("%w: the initial root is not TUF root metadata: %w", ErrRepository, err)
	}
	return nil
}

func record(repo Repository) repoRecord {
	sum := sha256.Sum256(repo.Root)
	pg := PublicGood()
	return repoRecord{Mirror: repo.Mirror, RootSHA256: hex.EncodeToString(sum[:]), PublicGood: repo.Mirror == pg.Mirror && bytes.Equal(repo.Root, pg.Root)}
}

// readRecord reads which repository the cache holds. The public good's
// anchor is always the embedded one, never a copy in the cache.
func readRecord(dir string) (repoRecord, Repository, error) {
	var rec repoRecord
	data, err := readfile.Read(filepath.Join(dir, repoFile), 64<<10)
	if errors.Is(err, os.ErrNotExist) {
		return rec, Repository{}, fmt.Errorf("%w (%s): run trustgate trust-root update", ErrNoCache, dir)
	}
	if err != nil {
		return rec, Repository{}, fmt.Errorf("TUF cache: %w", err)
	}
	if err := json.Unmarshal(data, &rec); err != nil || rec.Mirror == "" {
		return rec, Repository{}, fmt.Errorf("%w: %s: %s does not parse", ErrRepository, dir, repoFile)
	}
	if rec.PublicGood {
		pg := PublicGood()
		return rec, Repository{Mirror: rec.Mirror, Root: pg.Root}, nil
	}
	anchor, err := readfile.Read(filepath.Join(dir, anchorFile), maxFile)
	if err != nil {
		return rec, Repository{}, fmt.Errorf("%w: %s: %w", ErrRepository, dir, err)
	}
	if sum := sha256.Sum256(anchor); hex.EncodeToString(sum[:]) != rec.RootSHA256 {
		return rec, Repository{}, fmt.Errorf("%w: %s: %s is not the anchor %s names", ErrTampered, dir, anchorFile, repoFile)
	}
	return rec, Repository{Mirror: rec.Mirror, Root: anchor}, nil
}

// writeRoots keeps, in staging, every root version the update walked
// through above the anchor, for Load to walk again.
func writeRoots(staging string, repo Repository, f *fetcher, final int64) error {
	anchor, err := metadata.Root().FromBytes(repo.Root)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrRepository, err)
	}
	if err := os.MkdirAll(filepath.Join(staging, rootsDir), 0o755); err != nil {
		return err
	}
	for v := anchor.Signed.Version + 1; v <= final; v++ {
		data, ok := f.roots[v]
		if !ok {
			return fmt.Errorf("%w: %s: root version %d was trusted but not fetched", ErrRepository, repo.Mirror, v)
		}
		if err := atomicfile.Write(filepath.Join(staging, rootsDir, strconv.FormatInt(v, 10)+".root.json"), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// install moves a verified update from staging into dir: the roots, the
// targets, the metadata, then the record. Load holds the shared lock, so it
// sees the cache before or after, never between.
func install(dir, staging string, repo Repository) error {
	for _, sub := range []string{rootsDir, targetsDir, metadataDir} {
		old := filepath.Join(dir, sub)
		if err := os.RemoveAll(old + ".old"); err != nil {
			return err
		}
		if err := os.Rename(old, old+".old"); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("TUF cache: %w", err)
		}
		if err := os.Rename(filepath.Join(staging, sub), old); err != nil {
			return fmt.Errorf("TUF cache: %w", err)
		}
		_ = os.RemoveAll(old + ".old")
	}
	rec := record(repo)
	if !rec.PublicGood {
		if err := atomicfile.Write(filepath.Join(dir, anchorFile), repo.Root, 0o644); err != nil {
			return err
		}
	} else {
		_ = os.Remove(filepath.Join(dir, anchorFile))
	}
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, repoFile), append(data, '\n'), 0o644)
}

// copyDir copies the regular files of src (not recursively) into dst.
func copyDir(src, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(src)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("TUF cache: %w", err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		data, err := readfile.Read(filepath.Join(src, e.Name()), maxFile)
		if err != nil {
			return fmt.Errorf("TUF cache: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

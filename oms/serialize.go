package oms

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/trustgate/trustgate/internal/safetext"
)

// Options say how to serialize a model. The zero value serializes by
// files with SHA-256, refuses symbolic links and ignores nothing, as
// model_signing's serializers do when given no arguments (its CLI adds
// GitPaths and the signature file to IgnorePaths).
type Options struct {
	// Method is MethodFiles ("" means it) or MethodShards.
	Method string
	// HashType is HashSHA256 ("" means it); anything else is refused.
	HashType string
	// ShardSize is the shard size of MethodShards; 0 means
	// DefaultShardSize.
	ShardSize int64
	// AllowSymlinks includes symbolic links to files (with their target's
	// content, under the link's name) and skips links to directories, as
	// the reference does. Even then a link must be relative and stay
	// inside the model folder.
	AllowSymlinks bool
	// IgnorePaths are paths relative to the model folder (POSIX, no ".."):
	// each, and everything under it, is left out. They are recorded in the
	// manifest's serialization.
	IgnorePaths []string
	// MaxResources bounds the files, and the resources, of the model; 0
	// means MaxResources.
	MaxResources int
	// Workers is how many files or shards are hashed at once; 0 means
	// GOMAXPROCS.
	Workers int
}

// Serialize serializes the model at modelPath (a folder, or one file) as
// model_signing does, and returns its manifest. Every file (or shard) is
// read once, streaming, by a few workers. No symbolic link is followed
// unless opts allow them, and then none out of the folder (a model path
// that is itself a link leads where it leads).
func Serialize(ctx context.Context, modelPath string, opts Options) (*Manifest, error) {
	s, err := opts.serialization()
	if err != nil {
		return nil, err
	}
	ig := ignoreSet(s.IgnorePaths) // clean already
	limit := MaxResources
	if opts.MaxResources > 0 {
		limit = opts.MaxResources
	}
	workers := runtime.GOMAXPROCS(0)
	if opts.Workers > 0 {
		workers = opts.Workers
	}
	items, err := serializeItems(ctx, modelPath, s, ig, limit, workers)
	if err != nil {
		return nil, err
	}
	name, err := modelName(modelPath)
	if err != nil {
		return nil, err
	}
	return &Manifest{ModelName: name, Serialization: s, Resources: resources(items, s)}, nil
}

// serialization checks the options and gives the serialization they
// record.
func (o Options) serialization() (Serialization, error) {
	s := Serialization{Method: cmpS(o.Method, MethodFiles), HashType: cmpS(o.HashType, HashSHA256), AllowSymlinks: o.AllowSymlinks}
	if s.Method == MethodShards {
		s.ShardSize = cmp0(o.ShardSize, DefaultShardSize)
	}
	for _, p := range o.IgnorePaths {
		c, err := cleanIgnorePath(p)
		if err != nil {
			return s, err
		}
		if !slices.Contains(s.IgnorePaths, c) {
			s.IgnorePaths = append(s.IgnorePaths, c)
		}
	}
	return s, s.check()
}

// check refuses a serialization this package does not implement.
func (s Serialization) check() error {
	switch s.Method {
	case MethodFiles, MethodShards:
	default:
		return fmt.Errorf("%w: serialization method %q, want %q or %q", ErrUnsupported, clip(s.Method), MethodFiles, MethodShards)
	}
	if s.HashType != HashSHA256 {
		return fmt.Errorf("%w: hash type %q, want %q (blake2b and blake3 are not implemented)", ErrUnsupported, clip(s.HashType), HashSHA256)
	}
	if s.Method == MethodShards && (s.ShardSize < 1 || s.ShardSize > MaxShardSize) {
		return fmt.Errorf("%w: shard size %d, want 1 to %d", ErrUnsupported, s.ShardSize, int64(MaxShardSize))
	}
	return nil
}

// cleanIgnorePath checks one ignore path and gives it in clean form. A
// path that is empty, ".", absolute or climbs out with ".." is refused:
// "." would ignore the whole model, and the others ignore nothing in the
// reference (it joins them to the model path and never matches them).
func cleanIgnorePath(p string) (string, error) {
	c := path.Clean(p)
	switch {
	case p == "" || c == ".":
		return "", fmt.Errorf("%w: ignore path %q would ignore the whole model", ErrUnsupported, clip(p))
	case !utf8.ValidString(p) || strings.ContainsRune(p, 0):
		return "", fmt.Errorf("%w: ignore path %q is not valid UTF-8 text", ErrUnsupported, clip(p))
	case path.IsAbs(c) || c == ".." || strings.HasPrefix(c, "../"):
		return "", fmt.Errorf("%w: ignore path %q is not inside the model folder (want a relative path without ..)", ErrUnsupported, clip(p))
	}
	return c, nil
}

// ignoreSet holds clean relative paths; a path is ignored when it is one
// of them or lies under one.
type ignoreSet []string

// covers reports whether rel (a clean relative POSIX path) is ignored.
func (ig ignoreSet) covers(rel string) bool {
	for _, p := range ig {
		if rel == p || strings.HasPrefix(rel, p+"/") {
			return true
		}
	}
	return false
}

// modelName is the last element of the model's path, as the reference
// takes it: for "." or "..", the name of the folder they stand for.
func modelName(modelPath string) (string, error) {
	name := filepath.Base(modelPath)
	if name != "." && name != ".." && name != string(filepath.Separator) {
		return name, nil
	}
	abs, err := filepath.Abs(modelPath)
	if err != nil {
		return "", fmt.Errorf("naming model %q: %w", modelPath, err)
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	return filepath.Base(abs), nil
}

// fileEntry is a file to hash: its resource path, its size and what it
// was when listed, so that a file swapped before it is opened is caught.
type fileEntry struct {
	path string
	info fs.FileInfo
}

// opener opens a listed file for reading.
type opener func(rel string) (*os.File, error)

// serializeItems lists and hashes the model's files.
func serializeItems(ctx context.Context, modelPath string, s Serialization, ig ignoreSet, limit, workers int) ([]item, error) {
	fi, err := os.Lstat(modelPath)
	if err != nil {
		return nil, fmt.Errorf("model %q: %w", modelPath, err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		if !s.AllowSymlinks {
			return nil, fmt.Errorf("%w: model path %q is a symbolic link, and allow_symlinks is false", ErrSymlink, modelPath)
		}
		if fi, err = os.Stat(modelPath); err != nil {
			return nil, fmt.Errorf("%w: model path %q: %w", ErrSymlink, modelPath, err)
		}
	}
	switch {
	case fi.Mode().IsRegular():
		// A model that is one file: one resource, named ".".
		open := func(string) (*os.File, error) { return os.OpenFile(modelPath, openFlags, 0) }
		return hashFiles(ctx, open, []fileEntry{{path: ".", info: fi}}, s, limit, workers)
	case fi.IsDir():
		r, err := os.OpenRoot(modelPath)
		if err != nil {
			return nil, fmt.Errorf("model %q: %w", modelPath, err)
		}
		defer r.Close()
		files, err := walk(ctx, r, s.AllowSymlinks, ig, limit)
		if err != nil {
			return nil, err
		}
		open := func(rel string) (*os.File, error) { return r.OpenFile(rel, openFlags, 0) }
		return hashFiles(ctx, open, files, s, limit, workers)
	}
	return nil, fmt.Errorf("%w: model path %q is a %s", ErrSpecialFile, modelPath, kind(fi.Mode()))
}

// walk lists the files of the folder r, in no particular order: every
// regular file, and (when allowSymlinks) every link to a regular file
// inside r, that ig does not cover. It does not descend into ignored
// folders or through links, and refuses special files.
func walk(ctx context.Context, r *os.Root, allowSymlinks bool, ig ignoreSet, limit int) ([]fileEntry, error) {
	var files []fileEntry
	dirs := []fileEntry{{path: "."}}
	for n := 0; len(dirs) > 0; n++ {
		if n > limit {
			return nil, fmt.Errorf("%w: more than %d folders", ErrTooMany, limit)
		}
		dir := dirs[len(dirs)-1]
		dirs = dirs[:len(dirs)-1]
		entries, err := readDir(ctx, r, dir, limit)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			rel := path.Join(dir.path, e.Name())
			if ig.covers(rel) {
				continue
			}
			if !utf8.ValidString(e.Name()) {
				return nil, fmt.Errorf("%w: %q is not valid UTF-8", ErrName, rel)
			}
			f, isDir, err := classify(r, rel, e, allowSymlinks)
			switch {
			case err != nil:
				return nil, err
			case isDir:
				dirs = append(dirs, f)
			case f.info != nil:
				if len(files) == limit {
					return nil, fmt.Errorf("%w: more than %d files", ErrTooMany, limit)
				}
				files = append(files, f)
			}
		}
	}
	return files, nil
}

// readDir reads one folder's entries, at most limit of them, making sure
// the folder opened is the one listed.
func readDir(ctx context.Context, r *os.Root, dir fileEntry, limit int) ([]fs.DirEntry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d, err := r.Open(dir.path)
	if err != nil {
		return nil, fmt.Errorf("reading folder %q: %w", dir.path, err)
	}
	defer d.Close()
	if dir.info != nil {
		st, err := d.Stat()
		if err != nil || !os.SameFile(st, dir.info) {
			return nil, fmt.Errorf("%w: folder %q changed while the model was read", ErrSymlink, dir.path)
		}
	}
	var out []fs.DirEntry
	for {
		batch, err := d.ReadDir(1024)
		out = append(out, batch...)
		if len(out) > limit {
			return nil, fmt.Errorf("%w: folder %q holds more than %d entries", ErrTooMany, dir.path, limit)
		}
		if err == io.EOF || (err == nil && len(batch) == 0) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading folder %q: %w", dir.path, err)
		}
	}
}

// classify says what one folder entry is for serialization: a folder to
// descend into, a file to hash (f.info set), or nothing (a link to a
// folder, which the reference skips). Links are refused unless allowed,
// and then must resolve inside r.
func classify(r *os.Root, rel string, e fs.DirEntry, allowSymlinks bool) (f fileEntry, isDir bool, err error) {
	f.path = rel
	mode := e.Type()
	if mode&fs.ModeSymlink != 0 {
		if !allowSymlinks {
			return f, false, fmt.Errorf("%w: %q is a symbolic link, and allow_symlinks is false", ErrSymlink, rel)
		}
		st, err := r.Stat(rel)
		if errors.Is(err, fs.ErrNotExist) {
			return f, false, fmt.Errorf("%w: %q points to nothing", ErrSymlink, rel)
		}
		if err != nil {
			return f, false, fmt.Errorf("%w: %q points outside the model folder, or is absolute", ErrSymlink, rel)
		}
		switch {
		case st.Mode().IsRegular():
			f.info = st
			return f, false, nil
		case st.IsDir():
			return f, false, nil
		}
		return f, false, fmt.Errorf("%w: %q points to a %s", ErrSpecialFile, rel, kind(st.Mode()))
	}
	if !mode.IsDir() && !mode.IsRegular() {
		return f, false, fmt.Errorf("%w: %q is a %s", ErrSpecialFile, rel, kind(mode))
	}
	info, err := e.Info()
	if err != nil {
		return f, false, fmt.Errorf("reading %q: %w", rel, err)
	}
	if mode.IsDir() {
		return fileEntry{path: rel, info: info}, true, nil
	}
	f.info = info
	return f, false, nil
}

// kind names a non-regular file's type for messages.
func kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	}
	return "special file"
}

// job is one resource to hash: a whole file, or one shard of it.
type job struct {
	file       int
	start, end int64
	whole      bool
}

// jobs lists the resources of the files: one per file, or for shards one
// per shard of each non-empty file (an empty file has no shard, as in the
// reference).
func jobs(files []fileEntry, s Serialization, limit int) ([]job, error) {
	var out []job
	for i, f := range files {
		if s.Method == MethodFiles {
			out = append(out, job{file: i, whole: true})
			continue
		}
		size := f.info.Size()
		n := size / s.ShardSize
		if size%s.ShardSize != 0 {
			n++
		}
		if int64(len(out))+n > int64(limit) {
			return nil, fmt.Errorf("%w: more than %d shards of %d bytes", ErrTooMany, limit, s.ShardSize)
		}
		for start := int64(0); start < size; start += s.ShardSize {
			out = append(out, job{file: i, start: start, end: min(start+s.ShardSize, size)})
		}
	}
	return out, nil
}

// hashFiles hashes every resource of files with a few workers.
func hashFiles(ctx context.Context, open opener, files []fileEntry, s Serialization, limit, workers int) ([]item, error) {
	js, err := jobs(files, s, limit)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := make([]item, len(js))
	errs := make([]error, len(js))
	next := make(chan int)
	var wg sync.WaitGroup
	for range max(1, min(workers, len(js))) {
		wg.Go(func() {
			buf := make([]byte, 1<<20)
			for i := range next {
				j := js[i]
				f := files[j.file]
				d, err := hashOne(ctx, open, f, j, buf)
				out[i], errs[i] = item{path: f.path, start: j.start, end: j.end, digest: d}, err
				if err != nil {
					cancel()
				}
			}
		})
	}
	for i := range js {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if err := firstError(errs); err != nil {
		return nil, err
	}
	return out, ctx.Err()
}

// firstError is the first error that is not a cancellation, or else the
// first one.
func firstError(errs []error) error {
	var first error
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		if first == nil {
			first = err
		}
	}
	return first
}

// hashOne hashes one resource: it opens the file, checks it is still the
// regular file that was listed, and streams the file (or the shard)
// through SHA-256.
func hashOne(ctx context.Context, open opener, f fileEntry, j job, buf []byte) ([]byte, error) {
	fh, err := open(f.path)
	if err != nil {
		return nil, fmt.Errorf("opening %q: %w", f.path, err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading %q: %w", f.path, err)
	}
	if !st.Mode().IsRegular() || !os.SameFile(st, f.info) {
		return nil, fmt.Errorf("%w: %q was replaced while the model was read", ErrSpecialFile, f.path)
	}
	h := sha256.New()
	var src io.Reader = fh
	if !j.whole {
		src = io.NewSectionReader(fh, j.start, j.end-j.start)
	}
	n, err := copyContext(ctx, h, src, buf)
	if err != nil {
		return nil, fmt.Errorf("reading %q: %w", f.path, err)
	}
	if !j.whole && n != j.end-j.start {
		return nil, fmt.Errorf("%w: %q shrank while it was read (%d bytes, expected %d)", ErrMismatch, f.path, j.start+n, f.info.Size())
	}
	return h.Sum(nil), nil
}

// copyContext copies src to dst through buf, checking ctx between chunks.
func copyContext(ctx context.Context, dst io.Writer, src io.Reader, buf []byte) (int64, error) {
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		k, err := src.Read(buf)
		_, _ = dst.Write(buf[:k]) // a hash never fails to write
		n += int64(k)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// cmp0 is v, or def when v is zero.
func cmp0[T int | int64](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// cmpS is v, or def when v is empty.
func cmpS(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// clip shortens text from a signature or a caller for an error message.
func clip(s string) string { return safetext.Clip(s, 80) }

package clientkeys

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/trustgate/trustgate/internal/atomicfile"
	"github.com/trustgate/trustgate/internal/readfile"
)

// Errors, matched with errors.Is.
var (
	// ErrUnknownKey: no key of that id in the file.
	ErrUnknownKey = errors.New("unknown gateway key")
	// ErrMalformedFile: the key file is not a valid version 1 key file
	// (bad JSON, an unknown or repeated field, a repeated id, a bad salt
	// or hash, ...), or is larger than MaxFileSize.
	ErrMalformedFile = errors.New("malformed gateway key file")
	// ErrUnsafeFile: the key file is not a regular file, or other users
	// may write it.
	ErrUnsafeFile = errors.New("unsafe gateway key file")
	// ErrBadName: a key's name is empty, too long, or holds control or
	// invisible characters.
	ErrBadName = errors.New("bad gateway key name")
)

// MaxFileSize bounds the key file: about 4,000 keys.
const MaxFileSize = 1 << 20

// MaxNameLen bounds a key's name, in bytes.
const MaxNameLen = 128

// lockWait is how long Add and Revoke wait for another writer: far longer
// than an update takes, far shorter than a hang.
const lockWait = 10 * time.Second

const fileVersion = 1

// Entry describes one key, without its secret or hash.
type Entry struct {
	ID      string
	Name    string
	Created time.Time
	// Revoked is zero while the key is in use.
	Revoked time.Time
}

// record is one key as Check uses it.
type record struct {
	id      string
	name    string
	salt    [saltLen]byte
	hash    [sha256.Size]byte
	created time.Time
	revoked time.Time // zero: in use
}

func (r record) entry() Entry {
	return Entry{ID: r.id, Name: r.name, Created: r.created, Revoked: r.revoked}
}

// The file's JSON; fieldNames must list every name it uses.
type (
	fileJSON struct {
		Version int          `json:"version"`
		Keys    []recordJSON `json:"keys"`
	}
	recordJSON struct {
		ID      string     `json:"id"`
		Name    string     `json:"name"`
		Salt    b64        `json:"salt"`
		Hash    b64        `json:"hash"`
		Created time.Time  `json:"created"`
		Revoked *time.Time `json:"revoked"`
	}
)

var fieldNames = map[string]bool{
	"version": true, "keys": true,
	"id": true, "name": true, "salt": true, "hash": true, "created": true, "revoked": true,
}

// b64 is bytes as standard base64 with padding, decoded strictly.
type b64 []byte

func (b b64) MarshalJSON() ([]byte, error) {
	return json.Marshal(base64.StdEncoding.EncodeToString(b))
}

func (b *b64) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	out, err := base64.StdEncoding.DecodeString(s)
	if err != nil || base64.StdEncoding.EncodeToString(out) != s {
		return errors.New("not canonical base64")
	}
	*b = out
	return nil
}

// parse turns a record of the file into a record, the one place where a
// record's rules are checked.
func (j recordJSON) parse() (record, error) {
	r := record{id: j.ID, name: j.Name, created: j.Created}
	switch {
	case !validID(j.ID):
		return r, errors.New(`"id" is not a key id`)
	case len(j.Salt) != saltLen:
		return r, fmt.Errorf(`"salt" has %d bytes, want %d`, len(j.Salt), saltLen)
	case len(j.Hash) != sha256.Size:
		return r, fmt.Errorf(`"hash" has %d bytes, want %d`, len(j.Hash), sha256.Size)
	case j.Created.IsZero():
		return r, errors.New(`"created" is missing`)
	}
	if err := checkName(j.Name); err != nil {
		return r, err
	}
	copy(r.salt[:], j.Salt)
	copy(r.hash[:], j.Hash)
	if j.Revoked != nil {
		if j.Revoked.IsZero() {
			return r, errors.New(`"revoked" is the zero time; use null for a key in use`)
		}
		r.revoked = *j.Revoked
	}
	return r, nil
}

func (r record) json() recordJSON {
	j := recordJSON{ID: r.id, Name: r.name, Salt: r.salt[:], Hash: r.hash[:], Created: r.created}
	if !r.revoked.IsZero() {
		t := r.revoked
		j.Revoked = &t
	}
	return j
}

// checkName accepts 1 to MaxNameLen bytes of UTF-8 text without control,
// formatting or invisible characters, so that a name prints as it reads.
func checkName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("%w: want 1 to %d bytes", ErrBadName, MaxNameLen)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%w: not UTF-8", ErrBadName)
	}
	for _, r := range name {
		if r != ' ' && (!unicode.IsPrint(r) || unicode.Is(unicode.Cf, r)) {
			return fmt.Errorf("%w: control or invisible character %U", ErrBadName, r)
		}
	}
	return nil
}

// fileID tells one version of the key file from another without reading
// it: the file replaced (inode), rewritten (size, mtime) or chmodded
// (mode). The zero fileID stands for a file that could not be examined.
type fileID struct {
	dev, ino uint64
	size     int64
	mtime    int64
	mode     fs.FileMode
}

func idOf(fi fs.FileInfo) fileID {
	id := fileID{size: fi.Size(), mtime: fi.ModTime().UnixNano(), mode: fi.Mode()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.dev, id.ino = uint64(st.Dev), st.Ino
	}
	return id
}

// load reads and parses the key file, returning the fileID of what it
// read (zero when it could not open it).
func load(path string) (*Set, fileID, error) {
	f, err := readfile.Open(path)
	if errors.Is(err, readfile.ErrNotRegular) {
		return nil, fileID{}, fmt.Errorf("gateway keys: %w: %w", ErrUnsafeFile, err)
	}
	if err != nil {
		return nil, fileID{}, fmt.Errorf("gateway keys: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fileID{}, fmt.Errorf("gateway keys %q: %w", path, err)
	}
	id := idOf(fi)
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return nil, id, fmt.Errorf("gateway keys %q: %w: other users may write it (mode %04o); run chmod go-w on it", path, ErrUnsafeFile, perm)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, id, fmt.Errorf("gateway keys %q: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, id, fmt.Errorf("gateway keys %q: %w: larger than %d bytes", path, ErrMalformedFile, MaxFileSize)
	}
	recs, err := decode(data)
	if err != nil {
		return nil, id, fmt.Errorf("gateway keys %q: %w", path, err)
	}
	return newSet(recs, fi.ModTime()), id, nil
}

// decode parses a key file strictly: one JSON object, every field name
// known and given once, version 1, and every record valid with an id of
// its own.
func decode(data []byte) ([]record, error) {
	if err := checkNames(data); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedFile, err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f fileJSON
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrMalformedFile, jsonProblem(err))
	}
	if f.Version != fileVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrMalformedFile, f.Version, fileVersion)
	}
	if f.Keys == nil {
		return nil, fmt.Errorf(`%w: "keys" is missing`, ErrMalformedFile)
	}
	recs := make([]record, 0, len(f.Keys))
	seen := make(map[string]bool, len(f.Keys))
	for i, k := range f.Keys {
		r, err := k.parse()
		if err != nil {
			return nil, fmt.Errorf("%w: key %d: %w", ErrMalformedFile, i, err)
		}
		if seen[r.id] {
			return nil, fmt.Errorf("%w: key %d: id %q is repeated", ErrMalformedFile, i, r.id)
		}
		seen[r.id] = true
		recs = append(recs, r)
	}
	return recs, nil
}

// checkNames walks the JSON tokens of data: one value, no trailing data,
// and in every object only names from fieldNames, each at most once
// (encoding/json would keep the last of two, and match names regardless
// of case).
func checkNames(data []byte) error {
	type frame struct {
		names    map[string]bool // nil for an array
		wantName bool
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var stack []*frame
	values := 0
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].names != nil {
			stack[n-1].wantName = true
		}
	}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return errors.New(jsonProblem(err))
		}
		if len(stack) == 0 {
			if values++; values > 1 {
				return errors.New("data after the JSON object")
			}
		}
		if n := len(stack); n > 0 && stack[n-1].wantName {
			if name, ok := tok.(string); ok {
				if !fieldNames[name] {
					return fmt.Errorf("unknown field %q", name)
				}
				if stack[n-1].names[name] {
					return fmt.Errorf("field %q is repeated", name)
				}
				stack[n-1].names[name] = true
				stack[n-1].wantName = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{names: map[string]bool{}, wantName: true})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
	}
	if values == 0 {
		return errors.New("empty")
	}
	return nil
}

// jsonProblem describes a decoding error without quoting the file.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("%q: want a JSON %s", te.Field, te.Type)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	}
	return err.Error()
}

// encode is the key file's content for recs.
func encode(recs []record) ([]byte, error) {
	f := fileJSON{Version: fileVersion, Keys: make([]recordJSON, len(recs))}
	for i, r := range recs {
		f.Keys[i] = r.json()
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// Load reads the key file at path: a regular file that only its owner
// may write, at most MaxFileSize bytes, parsed strictly. A missing file
// is an error (fs.ErrNotExist); a file with no keys gives a Set that
// accepts nothing.
func Load(path string) (*Set, error) {
	s, _, err := load(path)
	return s, err
}

// List returns the keys in the file at path, in the order they were
// added, without their secrets or hashes.
func List(path string) ([]Entry, error) {
	s, err := Load(path)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, len(s.keys))
	for i, r := range s.keys {
		out[i] = r.entry()
	}
	return out, nil
}

// Add makes a new key named name, records its salted hash in the file at
// path (created, mode 0600, if missing) and returns the key and its id.
// The key is not stored anywhere: the caller must hand it over now.
func Add(path, name string) (key, id string, err error) {
	if err := checkName(name); err != nil {
		return "", "", err
	}
	err = update(path, func(recs []record) ([]record, error) {
		taken := make(map[string]bool, len(recs))
		for _, r := range recs {
			taken[r.id] = true
		}
		var secret [secretLen]byte
		for {
			id, secret, key = newKey()
			if !taken[id] {
				break
			}
		}
		r := record{id: id, name: name, created: time.Now().UTC().Truncate(time.Second)}
		rand.Read(r.salt[:])
		r.hash = hashSecret(r.salt, secret)
		return append(recs, r), nil
	})
	if err != nil {
		return "", "", err
	}
	return key, id, nil
}

// Revoke marks the key id as revoked in the file at path; Check refuses
// it from then on (a Reloader, once it has reloaded the file). Revoking a
// revoked key keeps its first revocation time. An id not in the file is
// ErrUnknownKey.
func Revoke(path, id string) error {
	if !validID(id) {
		// Never quoted: it may be a whole key given by mistake.
		return fmt.Errorf("gateway keys %q: %w: not a key id (%d characters a-z, 2-7)", path, ErrUnknownKey, idLen)
	}
	return update(path, func(recs []record) ([]record, error) {
		for i := range recs {
			if recs[i].id == id {
				if recs[i].revoked.IsZero() {
					recs[i].revoked = time.Now().UTC().Truncate(time.Second)
				}
				return recs, nil
			}
		}
		return nil, fmt.Errorf("gateway keys %q: %w: %q", path, ErrUnknownKey, id)
	})
}

// update applies change to the keys of the file at path under the file's
// lock and writes the result atomically, mode 0600. A missing file has
// no keys.
func update(path string, change func([]record) ([]record, error)) error {
	unlock, err := atomicfile.Lock(path+".lock", lockWait)
	if err != nil {
		return fmt.Errorf("gateway keys %q: %w", path, err)
	}
	defer unlock()
	var recs []record
	write := atomicfile.Write
	s, _, err := load(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		write = atomicfile.WriteNew
	case err != nil:
		return err
	default:
		recs = s.keys
	}
	recs, err = change(recs)
	if err != nil {
		return err
	}
	data, err := encode(recs)
	if err != nil {
		return fmt.Errorf("gateway keys %q: %w", path, err)
	}
	return write(path, data, 0o600)
}

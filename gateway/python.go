package gateway

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"syscall"
)

// InterpreterDirs are the folders a bare interpreter name (python3) is
// looked up in, in order. $PATH is never read: it is the environment's to
// choose, and the environment is not signed.
var InterpreterDirs = []string{"/usr/bin", "/bin", "/usr/local/bin"}

var (
	pythonName = regexp.MustCompile(`^python3(\.[0-9]{1,2})?$`)
	moduleName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`)
)

// ErrCommand means a folder's command is not one the gateway can run from
// a verified snapshot.
var ErrCommand = errors.New("unsupported command")

// pythonCommand reads a folder component's command, which must be
// `python3 -m MODULE [ARGS...]` (or an absolute interpreter path), and
// returns the interpreter as written, the module and the fixed arguments.
func pythonCommand(command []string) (interp, module string, args []string, err error) {
	if len(command) < 3 || command[1] != "-m" {
		return "", "", nil, fmt.Errorf("%w: a folder runs as [python3, -m, MODULE, ...], got %q", ErrCommand, command)
	}
	interp = command[0]
	if !pythonName.MatchString(filepath.Base(interp)) || (!filepath.IsAbs(interp) && interp != filepath.Base(interp)) {
		return "", "", nil, fmt.Errorf("%w: the interpreter must be python3 or python3.N, by name or clean absolute path, got %q", ErrCommand, interp)
	}
	if !moduleName.MatchString(command[2]) {
		return "", "", nil, fmt.Errorf("%w: %q is not a Python module name", ErrCommand, command[2])
	}
	return interp, command[2], command[3:], nil
}

// resolveInterpreter finds the interpreter name (looked up in
// InterpreterDirs) or absolute path, follows its links, and refuses it
// unless the file and every folder above it belong to root and are
// writable by no one else: anyone who can change it can run code inside
// every plugin it starts.
func resolveInterpreter(name string) (string, error) {
	var candidate string
	if filepath.IsAbs(name) {
		if filepath.Clean(name) != name {
			return "", fmt.Errorf("%w: interpreter path %q is not clean", ErrCommand, name)
		}
		candidate = name
	} else {
		for _, dir := range InterpreterDirs {
			p := filepath.Join(dir, name)
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
				candidate = p
				break
			}
		}
		if candidate == "" {
			return "", fmt.Errorf("interpreter %q: not found in %v", name, InterpreterDirs)
		}
	}
	for _, p := range []string{filepath.Dir(candidate)} {
		if err := rootOwnedChain(p); err != nil {
			return "", err
		}
	}
	real, err := filepath.EvalSymlinks(candidate)
	if err != nil {
		return "", fmt.Errorf("interpreter %q: %w", name, err)
	}
	if err := rootOwnedChain(real); err != nil {
		return "", err
	}
	return real, nil
}

// rootOwnedChain checks p and every folder above it.
func rootOwnedChain(p string) error {
	for {
		fi, err := os.Lstat(p)
		if err != nil {
			return fmt.Errorf("interpreter: %w", err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok || st.Uid != 0 {
			return fmt.Errorf("interpreter: %q does not belong to root", p)
		}
		if fi.Mode().Perm()&0o022 != 0 && fi.Mode()&os.ModeSymlink == 0 {
			return fmt.Errorf("interpreter: %q is writable by others than root (mode %o)", p, fi.Mode().Perm())
		}
		if p == "/" {
			return nil
		}
		p = filepath.Dir(p)
	}
}

// pythonBootstrap runs the module from the snapshot alone: with -I -S the
// interpreter reads no PYTHON* variable, adds neither the working folder
// nor the user's or the system's site-packages to the path, and processes
// no .pth file; the snapshot and its site-packages are put first.
const pythonBootstrap = `import sys, runpy
_, root, module, *rest = sys.argv
sys.path[:0] = [root, root + "/site-packages"]
sys.argv = [module] + rest
runpy.run_module(module, run_name="__main__", alter_sys=True)
`

// pythonArgv is the argument list that runs module from snapshot under
// the interpreter found at interpPath, its bytecode cache in pycache (an
// empty private folder: no .pyc from anywhere else is read).
func pythonArgv(interpPath, pycache, snapshot, module string, args []string) []string {
	argv := []string{interpPath, "-I", "-S", "-B", "-X", "pycache_prefix=" + pycache, "-c", pythonBootstrap, snapshot, module}
	return append(argv, args...)
}

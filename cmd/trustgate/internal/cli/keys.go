package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/trustgate/trustgate/attest"

	"github.com/trustgate/trustgate/internal/atomicfile"
	"github.com/trustgate/trustgate/internal/readfile"
)

// PasswordEnv names the environment variable that holds the password of an
// encrypted key, for keygen and for signing.
const PasswordEnv = "TRUSTGATE_PASSWORD"

const maxKeyFile = 64 << 10

type keygenFlags struct {
	keyType    string
	out        string
	noPassword bool
	force      bool
}

// NewKeygenCmd builds "trustgate keygen".
func NewKeygenCmd() *cobra.Command {
	var f keygenFlags
	cmd := &cobra.Command{
		Use:   "keygen --out PREFIX [--type ecdsa-p256|ed25519]",
		Short: "Make a signing key pair: PREFIX.key (encrypted) and PREFIX.pub",
		Long: `Make a signing key pair. PREFIX.key holds the private key, encrypted with
the password in ` + PasswordEnv + ` (or one typed at a prompt on a terminal), in
the format of cosign generate-key-pair, so either tool can use it. PREFIX.pub
holds the public key as PEM, for cosign, sigstore-js and trustgate verify.

An unencrypted private key is written only with --no-password. Existing files
are never overwritten unless --force is given.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runKeygen(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.out, "out", "", "prefix of the files to write: PREFIX.key and PREFIX.pub (required)")
	fl.StringVar(&f.keyType, "type", string(attest.ECDSAP256), "key type: ecdsa-p256 or ed25519")
	fl.BoolVar(&f.noPassword, "no-password", false, "write the private key unencrypted (keep it somewhere safe)")
	fl.BoolVar(&f.force, "force", false, "overwrite existing key files")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

func runKeygen(cmd *cobra.Command, f keygenFlags) error {
	keyPath, pubPath := f.out+".key", f.out+".pub"
	if !f.force {
		for _, p := range []string{keyPath, pubPath} {
			if _, err := os.Lstat(p); err == nil {
				return fmt.Errorf("keygen: %q exists; pass --force to overwrite it", p)
			}
		}
	}
	var password []byte
	if !f.noPassword {
		var err error
		password, err = readPassword(cmd, "password for the new key", true)
		if err != nil {
			return fmt.Errorf("keygen: %w", err)
		}
		if len(password) == 0 {
			return fmt.Errorf("keygen: the password is empty; use --no-password for an unencrypted key")
		}
	}
	key, err := attest.GenerateKey(attest.KeyType(f.keyType))
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	priv, err := key.MarshalPrivate(password)
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	pub, err := key.MarshalPublic()
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	write := atomicfile.WriteNew
	if f.force {
		write = atomicfile.Write
	}
	if err := write(keyPath, priv, 0o600); err != nil {
		return err
	}
	if err := write(pubPath, pub, 0o644); err != nil {
		// A private key without its public half is only in the way of
		// the next attempt.
		os.Remove(keyPath)
		return err
	}
	state := "encrypted"
	if f.noPassword {
		state = "UNENCRYPTED"
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s (%s, %s) and %s; key hint %s\n", keyPath, f.keyType, state, pubPath, key.Hint())
	return nil
}

// readPassword takes the password from TRUSTGATE_PASSWORD when it is set
// (even to the empty string), else asks on the terminal; confirm asks twice.
// The password is never echoed or printed.
func readPassword(cmd *cobra.Command, what string, confirm bool) ([]byte, error) {
	if v, ok := os.LookupEnv(PasswordEnv); ok {
		return []byte(v), nil
	}
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		return nil, fmt.Errorf("no password: set %s or run on a terminal", PasswordEnv)
	}
	ask := func(prompt string) ([]byte, error) {
		fmt.Fprintf(cmd.ErrOrStderr(), "%s: ", prompt)
		p, err := term.ReadPassword(int(os.Stdin.Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
		if err == nil && p == nil {
			p = []byte{} // an empty password is a password (cosign allows it)
		}
		return p, err
	}
	p, err := ask("Enter " + what)
	if err != nil {
		return nil, err
	}
	if confirm {
		again, err := ask("Enter it again")
		if err != nil {
			return nil, err
		}
		if string(again) != string(p) {
			return nil, errors.New("the two passwords differ")
		}
	}
	return p, nil
}

// loadKey reads a private key file, asking for its password only if it is
// encrypted. Errors name the file and the reason, never its content or the
// password.
func loadKey(cmd *cobra.Command, path string) (*attest.Key, error) {
	data, err := readfile.Read(path, maxKeyFile)
	if err != nil {
		return nil, fmt.Errorf("--key: %w", err)
	}
	key, err := attest.ParsePrivateKey(data, nil)
	if errors.Is(err, attest.ErrPasswordRequired) {
		var password []byte
		password, err = readPassword(cmd, "password for "+path, false)
		if err != nil {
			return nil, fmt.Errorf("--key %q: %w", path, err)
		}
		key, err = attest.ParsePrivateKey(data, password)
		err = attest.Redact(err, string(password))
	}
	if err != nil {
		return nil, fmt.Errorf("--key %q: %w", path, err)
	}
	return key, nil
}

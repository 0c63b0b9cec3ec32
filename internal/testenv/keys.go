package testenv

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"fmt"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"
)

// HostOptions configures a host started with Env.StartHostWith.
type HostOptions struct {
	// Name is the host's name; it need not be unique.
	Name string
	// HostKeyTypes lists the host keys to generate, of "ed25519", "ecdsa"
	// (P-256) and "rsa" (2048 bits), in sshd_config order. The first one
	// is the host's HostKeyFile. Empty means ed25519 only.
	HostKeyTypes []string
	// Config holds extra sshd_config lines. They come before the generated
	// ones, so they win: sshd uses the first value it reads for a keyword.
	// Leave SetEnv alone: Stop finds the sessions' processes by it.
	Config []string
}

func (o HostOptions) keyTypes() []string {
	if len(o.HostKeyTypes) == 0 {
		return []string{"ed25519"}
	}
	return o.HostKeyTypes
}

// generateKey returns a new private key of the given type.
func generateKey(typ string) (crypto.Signer, error) {
	switch typ {
	case "ed25519":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	case "ecdsa":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "rsa":
		return rsa.GenerateKey(rand.Reader, 2048)
	default:
		return nil, fmt.Errorf("unknown key type %q (want ed25519, ecdsa or rsa)", typ)
	}
}

// writeKeyPair generates a key of type typ, writes the private half to path
// (OpenSSH format, unencrypted, mode 0600) and the public half to
// path+".pub", and returns the public key.
func writeKeyPair(path, typ, comment string) (ssh.PublicKey, error) {
	priv, err := generateKey(typ)
	if err != nil {
		return nil, fmt.Errorf("testenv: generate key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, fmt.Errorf("testenv: marshal key: %w", err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, fmt.Errorf("testenv: write key: %w", err)
	}
	pub, err := ssh.NewPublicKey(priv.Public())
	if err != nil {
		return nil, fmt.Errorf("testenv: public key: %w", err)
	}
	line := strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(pub)), "\n") + " " + comment + "\n"
	if err := os.WriteFile(path+".pub", []byte(line), 0o644); err != nil {
		return nil, fmt.Errorf("testenv: write public key: %w", err)
	}
	return pub, nil
}

package attest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
)

const testPassword = "correct horse battery staple"

func TestKeyRoundTrip(t *testing.T) {
	for _, kt := range KeyTypes {
		t.Run(string(kt), func(t *testing.T) {
			k, err := GenerateKey(kt)
			if err != nil {
				t.Fatal(err)
			}
			for _, pw := range [][]byte{[]byte(testPassword), nil} {
				data, err := k.MarshalPrivate(pw)
				if err != nil {
					t.Fatal(err)
				}
				wantType := EncryptedKeyPEM
				if pw == nil {
					wantType = PrivateKeyPEM
				}
				if b, _ := pem.Decode(data); b == nil || b.Type != wantType {
					t.Fatalf("PEM type: got %v, want %s", b, wantType)
				}
				back, err := ParsePrivateKey(data, pw)
				if err != nil {
					t.Fatal(err)
				}
				if back.Hint() != k.Hint() {
					t.Fatalf("hint changed: %s -> %s", k.Hint(), back.Hint())
				}
			}
		})
	}
}

func TestKeyRejects(t *testing.T) {
	k, err := GenerateKey(ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := k.MarshalPrivate([]byte(testPassword))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := k.MarshalPublic()
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaDER, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384DER, _ := x509.MarshalPKCS8PrivateKey(p384)
	block, _ := pem.Decode(enc)
	// The encrypted body is JSON holding the base64 ciphertext; flip one bit
	// of the ciphertext itself.
	var envelope map[string]any
	if err := json.Unmarshal(block.Bytes, &envelope); err != nil {
		t.Fatal(err)
	}
	ct, _ := base64.StdEncoding.DecodeString(envelope["ciphertext"].(string))
	ct[len(ct)/2] ^= 0x01
	envelope["ciphertext"] = base64.StdEncoding.EncodeToString(ct)
	flipped, _ := json.Marshal(envelope)
	truncated := enc[:len(enc)/2]

	cases := []struct {
		name     string
		data     []byte
		password []byte
		want     error
	}{
		{"wrong password", enc, []byte("hunter2-Zq9x"), ErrWrongPassword},
		{"no password for encrypted key", enc, nil, ErrPasswordRequired},
		{"public key given", pub, nil, ErrPublicKeyGiven},
		{"certificate given", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}), nil, ErrPublicKeyGiven},
		{"ciphertext flipped", pem.EncodeToMemory(&pem.Block{Type: EncryptedKeyPEM, Bytes: flipped}), []byte(testPassword), ErrWrongPassword},
		{"truncated file", truncated, []byte(testPassword), ErrKeyFormat},
		{"not PEM", []byte("just some text"), nil, ErrKeyFormat},
		{"encrypted envelope not JSON", pem.EncodeToMemory(&pem.Block{Type: EncryptedKeyPEM, Bytes: []byte("garbage")}), []byte(testPassword), ErrKeyFormat},
		{"PKCS8 body garbage", pem.EncodeToMemory(&pem.Block{Type: PrivateKeyPEM, Bytes: []byte("garbage")}), nil, ErrKeyFormat},
		{"unknown PEM type", pem.EncodeToMemory(&pem.Block{Type: "OPENSSH PRIVATE KEY", Bytes: []byte("x")}), nil, ErrKeyFormat},
		{"RSA key", pem.EncodeToMemory(&pem.Block{Type: PrivateKeyPEM, Bytes: rsaDER}), nil, ErrUnsupportedKey},
		{"huge file", bytes.Repeat([]byte("A"), maxKeyFileSize+1), nil, ErrKeyFormat},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParsePrivateKey(c.data, c.password)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if c.password != nil && strings.Contains(err.Error(), string(c.password)) {
				t.Fatalf("error quotes the password: %v", err)
			}
		})
	}
	// A P-384 key from another tool is read and signs.
	if _, err := ParsePrivateKey(pem.EncodeToMemory(&pem.Block{Type: PrivateKeyPEM, Bytes: p384DER}), nil); err != nil {
		t.Fatalf("P-384 key: %v", err)
	}
}

func TestGenerateKeyRejectsUnknownType(t *testing.T) {
	if _, err := GenerateKey("rsa-2048"); !errors.Is(err, ErrUnsupportedKey) {
		t.Fatalf("got %v, want ErrUnsupportedKey", err)
	}
}

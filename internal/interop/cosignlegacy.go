package interop

import (
	"os"
	"testing"
)

// CosignSignBlobLegacy runs, offline,
//
//	cosign sign-blob --key KEY --tlog-upload=false --bundle BUNDLE --output-signature SIG --yes FILE
//
// with COSIGN_PASSWORD=password: cosign v2's default formats, its older
// blob bundle (base64Signature) and the detached base64 signature.
func CosignSignBlobLegacy(t testing.TB, key, password, file, bundle, sig string) {
	t.Helper()
	cosignLegacy(t, []string{bundle, sig}, "COSIGN_PASSWORD="+password,
		"sign-blob", "--key", key, "--tlog-upload=false", "--bundle", bundle, "--output-signature", sig, "--yes", file)
}

// CosignAttestBlobLegacy runs, offline,
//
//	cosign attest-blob --key KEY --type TYPE --predicate PREDICATE --tlog-upload=false \
//	  --bundle BUNDLE --output-signature SIG --yes FILE
//
// with COSIGN_PASSWORD=password: the older blob bundle, whose
// base64Signature is the DSSE envelope, and the envelope as a file.
func CosignAttestBlobLegacy(t testing.TB, key, password, predicateType, predicate, file, bundle, sig string) {
	t.Helper()
	cosignLegacy(t, []string{bundle, sig}, "COSIGN_PASSWORD="+password,
		"attest-blob", "--key", key, "--type", predicateType, "--predicate", predicate,
		"--tlog-upload=false", "--bundle", bundle, "--output-signature", sig, "--yes", file)
}

// cosignLegacy runs cosign and fails the test unless it wrote every file.
func cosignLegacy(t testing.TB, files []string, env string, args ...string) {
	t.Helper()
	out, err := runCosign(t, "", cosignEnv(t, env), args...)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("cosign %s wrote no %s: %v\n%s", args[0], f, err, out)
		}
	}
}

// CosignVerifyBlobLegacy runs, offline, cosign verify-blob
// --insecure-ignore-tlog with args (the signer, the bundle or signature,
// the artifact): cosign's check of its older formats without a log entry.
func CosignVerifyBlobLegacy(t testing.TB, args ...string) (string, error) {
	t.Helper()
	return runCosign(t, "", cosignEnv(t), append([]string{"verify-blob", "--insecure-ignore-tlog", "--offline"}, args...)...)
}

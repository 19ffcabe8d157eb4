package sigstoretest

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"time"

	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	prototrustroot "github.com/sigstore/protobuf-specs/gen/pb-go/trustroot/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Media types of the files Start writes; sigstore-go v1.3.0 accepts exactly
// these.
const (
	TrustedRootMediaType   = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
	SigningConfigMediaType = "application/vnd.dev.sigstore.signingconfig.v0.2+json"
)

// Operator is the operator named for every service in the trusted root and
// the signing config.
const Operator = "sigstoretest.trustgate.invalid"

// RekorLogID returns the log ID of a Rekor v2 (rekor-tiles) log whose
// checkpoint key is pub and whose origin (the --hostname flag; the host of
// its URL in the trusted root) is origin. Rekor v2 puts this value in every
// entry's log_id, and sigstore-go finds the log in the trusted root by it.
//
// It is the untruncated hash of the C2SP signed-note key ID, for Ed25519:
// SHA-256(origin || "\n" || 0x01 || 32-byte public key). It is NOT the
// SHA-256 of the DER public key, which is the Rekor v1 log ID.
func RekorLogID(origin string, pub ed25519.PublicKey) []byte {
	h := sha256.New()
	h.Write([]byte(origin))
	h.Write([]byte{'\n', 0x01}) // 0x01: the Ed25519 signature type
	h.Write(pub)
	return h.Sum(nil)
}

// trustInputs is what the trusted root and signing config are made of.
type trustInputs struct {
	issuerURL, fulcioURL, rekorURL, tsaURL string
	rekorOrigin                            string
	rekorKey                               ed25519.PublicKey
	fulcioChain, tsaChain                  []*x509.Certificate // leaf/issuing first, root last
	validFrom                              time.Time
}

func (in *trustInputs) trustedRoot() ([]byte, error) {
	start := timestamppb.New(in.validFrom)
	rekorDER, err := x509.MarshalPKIXPublicKey(in.rekorKey)
	if err != nil {
		return nil, err
	}
	tr := &prototrustroot.TrustedRoot{
		MediaType: TrustedRootMediaType,
		Tlogs: []*prototrustroot.TransparencyLogInstance{{
			BaseUrl:       in.rekorURL,
			HashAlgorithm: protocommon.HashAlgorithm_SHA2_256,
			PublicKey: &protocommon.PublicKey{
				RawBytes:   rekorDER,
				KeyDetails: protocommon.PublicKeyDetails_PKIX_ED25519,
				ValidFor:   &protocommon.TimeRange{Start: start},
			},
			LogId:    &protocommon.LogId{KeyId: RekorLogID(in.rekorOrigin, in.rekorKey)},
			Operator: Operator,
		}},
		CertificateAuthorities: []*prototrustroot.CertificateAuthority{{
			Subject:   subject(in.fulcioChain[len(in.fulcioChain)-1]),
			Uri:       in.fulcioURL,
			CertChain: chainProto(in.fulcioChain),
			ValidFor:  &protocommon.TimeRange{Start: start},
			Operator:  Operator,
		}},
		TimestampAuthorities: []*prototrustroot.CertificateAuthority{{
			Subject:   subject(in.tsaChain[len(in.tsaChain)-1]),
			Uri:       in.tsaURL,
			CertChain: chainProto(in.tsaChain),
			ValidFor:  &protocommon.TimeRange{Start: start},
			Operator:  Operator,
		}},
	}
	return protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(tr)
}

func (in *trustInputs) signingConfig() ([]byte, error) {
	svc := func(url string, version uint32) *prototrustroot.Service {
		return &prototrustroot.Service{
			Url:             url,
			MajorApiVersion: version,
			ValidFor:        &protocommon.TimeRange{Start: timestamppb.New(in.validFrom)},
			Operator:        Operator,
		}
	}
	sc := &prototrustroot.SigningConfig{
		MediaType:       SigningConfigMediaType,
		CaUrls:          []*prototrustroot.Service{svc(in.fulcioURL, 1)},
		OidcUrls:        []*prototrustroot.Service{svc(in.issuerURL, 1)},
		RekorTlogUrls:   []*prototrustroot.Service{svc(in.rekorURL, 2)},
		RekorTlogConfig: &prototrustroot.ServiceConfiguration{Selector: prototrustroot.ServiceSelector_ANY},
		TsaUrls:         []*prototrustroot.Service{svc(in.tsaURL, 1)},
		TsaConfig:       &prototrustroot.ServiceConfiguration{Selector: prototrustroot.ServiceSelector_ANY},
	}
	return protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(sc)
}

func subject(c *x509.Certificate) *protocommon.DistinguishedName {
	dn := &protocommon.DistinguishedName{CommonName: c.Subject.CommonName}
	if len(c.Subject.Organization) > 0 {
		dn.Organization = c.Subject.Organization[0]
	}
	return dn
}

func chainProto(certs []*x509.Certificate) *protocommon.X509CertificateChain {
	ch := &protocommon.X509CertificateChain{}
	for _, c := range certs {
		ch.Certificates = append(ch.Certificates, &protocommon.X509Certificate{RawBytes: c.Raw})
	}
	return ch
}

// fulcioChain fetches the CA chain from Fulcio's /api/v2/trustBundle.
func fulcioChain(ctx context.Context, fulcioURL string) ([]*x509.Certificate, error) {
	body, err := get(ctx, fulcioURL+"/api/v2/trustBundle")
	if err != nil {
		return nil, err
	}
	var tb struct {
		Chains []struct {
			Certificates []string `json:"certificates"`
		} `json:"chains"`
	}
	if err := json.Unmarshal(body, &tb); err != nil {
		return nil, fmt.Errorf("fulcio trust bundle: %w", err)
	}
	if len(tb.Chains) != 1 {
		return nil, fmt.Errorf("fulcio trust bundle: want 1 chain, got %d", len(tb.Chains))
	}
	var pemData []byte
	for _, c := range tb.Chains[0].Certificates {
		pemData = append(pemData, c...)
		pemData = append(pemData, '\n')
	}
	return parsePEMChain("fulcio trust bundle", pemData)
}

// tsaChain fetches the TSA's chain from /api/v1/timestamp/certchain.
func tsaChain(ctx context.Context, tsaBaseURL string) ([]*x509.Certificate, error) {
	body, err := get(ctx, tsaBaseURL+"/api/v1/timestamp/certchain")
	if err != nil {
		return nil, err
	}
	return parsePEMChain("tsa cert chain", body)
}

func parsePEMChain(what string, data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s: no certificates", what)
	}
	return certs, nil
}

// harnessClient makes the harness's own requests. Without keep-alives it
// leaves no idle connections (and their goroutines) behind.
var harnessClient = &http.Client{
	Transport: &http.Transport{DisableKeepAlives: true},
	Timeout:   30 * time.Second,
}

func get(ctx context.Context, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := harnessClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return body, nil
}

package admission

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Bounds on what CheckManifests reads.
const (
	MaxManifestBytes = 32 << 20
	maxDocuments     = 4096
)

// ManifestResult is the decision on one object of a manifest file.
type ManifestResult struct {
	// Document is the object's place: its number in the stream (from 1),
	// and its index in a List.
	Document string
	Kind     string
	Name     string
	// Skipped says the object runs no containers (a Service, a
	// ConfigMap): the webhook is not sent such objects.
	Skipped bool
	// Err is an object that could not be read; it counts as denied.
	Err      error
	Decision Decision
}

// Allowed reports whether the webhook would admit the object.
func (r ManifestResult) Allowed() bool {
	return r.Skipped || (r.Err == nil && r.Decision.Allowed)
}

// runsContainers are the kinds whose objects carry a pod spec: those
// ReadWorkload reads. A kind of these names under a group or version it
// does not read is an error, not a skip.
var runsContainers = map[string]bool{
	"Pod": true, "PodTemplate": true, "ReplicationController": true, "Deployment": true,
	"StatefulSet": true, "DaemonSet": true, "ReplicaSet": true, "Job": true, "CronJob": true,
}

// CheckManifests makes, offline of any cluster, the decision the webhook
// would make on each object of a stream of YAML or JSON documents (as
// kubectl apply -f takes them, List objects included), with the same
// checker. namespace is used for objects that name none.
func (c *Checker) CheckManifests(ctx context.Context, r io.Reader, namespace string) ([]ManifestResult, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxManifestBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxManifestBytes {
		return nil, fmt.Errorf("the manifests are over %d bytes", MaxManifestBytes)
	}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []ManifestResult
	for n := 1; ; n++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", n, err)
		}
		if n > maxDocuments {
			return nil, fmt.Errorf("more than %d documents", maxDocuments)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		out = append(out, c.document(ctx, fmt.Sprint(n), doc, namespace)...)
	}
	return out, nil
}

// stripComments drops whole-line comments, so that a document of only
// comments counts as empty.
func stripComments(doc []byte) []byte {
	var b bytes.Buffer
	for line := range bytes.SplitSeq(doc, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			b.Write(line)
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

// document decides on one YAML or JSON document (a List: on each item).
func (c *Checker) document(ctx context.Context, at string, doc []byte, namespace string) []ManifestResult {
	raw, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return []ManifestResult{{Document: at, Err: err}}
	}
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
		Items []rawJSON `json:"items"`
	}
	if err := strictJSON(raw, &head); err != nil {
		return []ManifestResult{{Document: at, Err: err}}
	}
	res := ManifestResult{Document: at, Kind: head.Kind, Name: head.Metadata.Name}
	if head.Kind == "" || head.APIVersion == "" {
		res.Err = errors.New("not a Kubernetes object: no apiVersion or kind")
		return []ManifestResult{res}
	}
	if strings.HasSuffix(head.Kind, "List") {
		var out []ManifestResult
		for i, item := range head.Items {
			out = append(out, c.document(ctx, fmt.Sprintf("%s.items[%d]", at, i), item, namespace)...)
		}
		return out
	}
	if !runsContainers[head.Kind] {
		res.Skipped = true
		return []ManifestResult{res}
	}
	gv, err := schema.ParseGroupVersion(head.APIVersion)
	if err != nil {
		res.Err = err
		return []ManifestResult{res}
	}
	wl, err := ReadWorkload(gv.Group, gv.Version, head.Kind, raw)
	if err != nil {
		res.Err = err
		return []ManifestResult{res}
	}
	if wl.Namespace == "" {
		wl.Namespace = namespace
	}
	res.Decision = c.Check(ctx, wl)
	return []ManifestResult{res}
}

// rawJSON keeps a List item as its JSON bytes.
type rawJSON []byte

func (r *rawJSON) UnmarshalJSON(b []byte) error {
	*r = append((*r)[:0], b...)
	return nil
}

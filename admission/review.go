package admission

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	sigsjson "sigs.k8s.io/json"
)

// MaxReviewBytes bounds an AdmissionReview request body. The API server
// sends the object (at most 1.5 MiB in etcd) and, on an update, the old
// one; anything larger is not a review it sent.
const MaxReviewBytes = 8 << 20

// ErrBadReview means a request body is not an AdmissionReview this webhook
// can answer: it is answered 400, never guessed at.
var ErrBadReview = errors.New("bad AdmissionReview")

// The AdmissionReview version the webhook speaks (admissionReviewVersions
// in its ValidatingWebhookConfiguration).
const (
	ReviewAPIVersion = "admission.k8s.io/v1"
	ReviewKind       = "AdmissionReview"
)

// ParseReview decodes an AdmissionReview request and checks what the
// answer depends on: the version, a request with a uid, and for a create
// or an update the object.
func ParseReview(body []byte) (*admissionv1.AdmissionRequest, error) {
	var review admissionv1.AdmissionReview
	if err := strictJSON(body, &review); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadReview, err)
	}
	switch {
	case review.APIVersion != ReviewAPIVersion || review.Kind != ReviewKind:
		return nil, fmt.Errorf("%w: apiVersion %q kind %q, want %s %s", ErrBadReview, review.APIVersion, review.Kind, ReviewAPIVersion, ReviewKind)
	case review.Request == nil:
		return nil, fmt.Errorf("%w: no request", ErrBadReview)
	case review.Request.UID == "":
		return nil, fmt.Errorf("%w: the request has no uid", ErrBadReview)
	}
	return review.Request, nil
}

// Response wraps an answer to the request uid as an AdmissionReview.
func Response(uid string, allowed bool, message string, warnings []string) *admissionv1.AdmissionReview {
	resp := &admissionv1.AdmissionResponse{UID: types.UID(uid), Allowed: allowed, Warnings: warnings}
	if !allowed {
		resp.Result = &metav1.Status{Status: metav1.StatusFailure, Code: 403, Reason: metav1.StatusReasonForbidden, Message: message}
	}
	return &admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: ReviewAPIVersion, Kind: ReviewKind},
		Response: resp,
	}
}

// Workload is an object that runs containers, reduced to what the webhook
// judges: its kind and name, and the images of its pod spec.
type Workload struct {
	Kind, Namespace, Name string
	// PullSecrets are the pod spec's imagePullSecrets, by name.
	PullSecrets []string
	Images      []ImageUse
}

// ImageUse is one container's image, as the pod spec writes it.
type ImageUse struct {
	// Container is where the image is used: containers[NAME],
	// initContainers[NAME], ephemeralContainers[NAME] or, for an image
	// volume, volumes[NAME].
	Container string
	Image     string
}

// Kinds the webhook reads a pod spec from, by group/version/kind.
var podSpecOf = map[string]func([]byte) (*metav1.ObjectMeta, *corev1.PodSpec, error){
	"/v1/Pod":                   decodePod[corev1.Pod](func(o *corev1.Pod) *corev1.PodSpec { return &o.Spec }),
	"/v1/PodTemplate":           decodePod[corev1.PodTemplate](func(o *corev1.PodTemplate) *corev1.PodSpec { return &o.Template.Spec }),
	"/v1/ReplicationController": decodePod[corev1.ReplicationController](rcSpec),
	"apps/v1/Deployment":        decodePod[appsv1.Deployment](func(o *appsv1.Deployment) *corev1.PodSpec { return &o.Spec.Template.Spec }),
	"apps/v1/StatefulSet":       decodePod[appsv1.StatefulSet](func(o *appsv1.StatefulSet) *corev1.PodSpec { return &o.Spec.Template.Spec }),
	"apps/v1/DaemonSet":         decodePod[appsv1.DaemonSet](func(o *appsv1.DaemonSet) *corev1.PodSpec { return &o.Spec.Template.Spec }),
	"apps/v1/ReplicaSet":        decodePod[appsv1.ReplicaSet](func(o *appsv1.ReplicaSet) *corev1.PodSpec { return &o.Spec.Template.Spec }),
	"batch/v1/Job":              decodePod[batchv1.Job](func(o *batchv1.Job) *corev1.PodSpec { return &o.Spec.Template.Spec }),
	"batch/v1/CronJob":          decodePod[batchv1.CronJob](func(o *batchv1.CronJob) *corev1.PodSpec { return &o.Spec.JobTemplate.Spec.Template.Spec }),
}

// Kinds lists the kinds ReadWorkload reads, as group/version/kind (the
// core group is empty: /v1/Pod), sorted.
func Kinds() []string {
	out := slices.Collect(maps.Keys(podSpecOf))
	slices.Sort(out)
	return out
}

func rcSpec(o *corev1.ReplicationController) *corev1.PodSpec {
	if o.Spec.Template == nil {
		return nil
	}
	return &o.Spec.Template.Spec
}

// objectMetaOf is satisfied by every Kubernetes object type.
type objectMetaOf interface{ GetObjectMeta() metav1.Object }

func decodePod[T any](spec func(*T) *corev1.PodSpec) func([]byte) (*metav1.ObjectMeta, *corev1.PodSpec, error) {
	return func(raw []byte) (*metav1.ObjectMeta, *corev1.PodSpec, error) {
		var o T
		if err := strictJSON(raw, &o); err != nil {
			return nil, nil, err
		}
		var meta *metav1.ObjectMeta
		if m, ok := any(&o).(objectMetaOf); ok {
			if om, ok := m.GetObjectMeta().(*metav1.ObjectMeta); ok {
				meta = om
			}
		}
		return meta, spec(&o), nil
	}
}

// ErrKind means an object of a kind the webhook does not read: it cannot
// tell what it would run, so a review of one is denied.
var ErrKind = errors.New("a kind trustgate does not read")

// ReadWorkload reads the images of the object raw, of the group, version
// and kind given (from the review's request.kind, or the manifest's
// apiVersion and kind).
func ReadWorkload(group, version, kind string, raw []byte) (*Workload, error) {
	gvk := group + "/" + version + "/" + kind
	decode := podSpecOf[gvk]
	if decode == nil {
		return nil, fmt.Errorf("%w: %s (it reads %s)", ErrKind, strings.TrimPrefix(gvk, "/"), strings.Join(Kinds(), ", "))
	}
	meta, spec, err := decode(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", kind, err)
	}
	w := &Workload{Kind: kind}
	if meta != nil {
		w.Namespace, w.Name = meta.Namespace, meta.Name
	}
	if spec == nil {
		return w, nil
	}
	for _, s := range spec.ImagePullSecrets {
		if s.Name != "" {
			w.PullSecrets = append(w.PullSecrets, s.Name)
		}
	}
	for _, c := range spec.InitContainers {
		w.Images = append(w.Images, ImageUse{"initContainers[" + c.Name + "]", c.Image})
	}
	for _, c := range spec.Containers {
		w.Images = append(w.Images, ImageUse{"containers[" + c.Name + "]", c.Image})
	}
	for _, c := range spec.EphemeralContainers {
		w.Images = append(w.Images, ImageUse{"ephemeralContainers[" + c.Name + "]", c.Image})
	}
	// An image volume (an OCI image or artifact mounted as files: a
	// model, say) is pulled as a container image is, and judged as one.
	for _, v := range spec.Volumes {
		if v.Image != nil {
			w.Images = append(w.Images, ImageUse{"volumes[" + v.Name + "]", v.Image.Reference})
		}
	}
	return w, nil
}

// strictJSON decodes as the API server does (keys match field names
// exactly) and refuses a key given twice: encoding/json would match
// "Image" to the image field, or keep the last of two "image" keys, and so
// judge another image than the one the cluster runs.
func strictJSON(data []byte, v any) error {
	strict, err := sigsjson.UnmarshalStrict(data, v, sigsjson.DisallowDuplicateFields)
	if err != nil {
		return err
	}
	if len(strict) > 0 {
		return strict[0]
	}
	return nil
}

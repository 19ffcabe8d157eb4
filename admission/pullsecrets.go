package admission

import (
	"context"

	"github.com/google/go-containerregistry/pkg/authn"
	k8schain "github.com/google/go-containerregistry/pkg/authn/kubernetes"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// PullSecretKeychain reads a pod's imagePullSecrets through the API server
// (the webhook's service account needs get on secrets), as the kubelet
// would use them. The pod's service account is not read: for a pod, the
// API server has copied its pull secrets into the spec already.
func PullSecretKeychain(client kubernetes.Interface) KeychainFunc {
	return func(ctx context.Context, namespace string, secrets []string) (authn.Keychain, error) {
		return k8schain.New(ctx, client, k8schain.Options{
			Namespace: namespace, ImagePullSecrets: secrets, ServiceAccountName: k8schain.NoServiceAccount,
		})
	}
}

// KubeClient connects to the API server: with the kubeconfig file given,
// or from inside the cluster (the pod's service account) when it is "".
func KubeClient(kubeconfig string) (kubernetes.Interface, error) {
	var cfg *rest.Config
	var err error
	if kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	} else {
		cfg, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, err
	}
	cfg.UserAgent = "trustgate-admission"
	return kubernetes.NewForConfig(cfg)
}

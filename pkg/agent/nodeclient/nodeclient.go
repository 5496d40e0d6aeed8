// Package nodeclient lists and watches Node objects for the agent, over a
// REST client that knows the core/v1 API group and nothing else.
//
// client-go's typed clientset registers every built-in API group at start
// and links all of them into the binary; the agent reads Nodes only, so it
// carries one group's codecs and types (docs/performance.md, Memory).
package nodeclient

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
)

// Interface is what the agent needs of the API server. client-go's
// typed NodeInterface (clientset.CoreV1().Nodes()) satisfies it too.
type Interface interface {
	List(ctx context.Context, opts metav1.ListOptions) (*corev1.NodeList, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
}

// scheme holds core/v1 only (with the meta types its list and watch calls
// need); codecs decode protobuf and JSON from it.
var (
	scheme         = runtime.NewScheme()
	codecs         = serializer.NewCodecFactory(scheme)
	parameterCodec = runtime.NewParameterCodec(scheme)
)

func init() {
	if err := corev1.AddToScheme(scheme); err != nil {
		panic(fmt.Sprintf("register core/v1: %v", err))
	}
}

// Client is Interface over a REST client.
type Client struct {
	rest rest.Interface
}

// New returns a Client for cfg; cfg's content types, user agent and
// transport settings are kept, its group, path and serializer set for
// core/v1.
func New(cfg *rest.Config) (*Client, error) {
	c := rest.CopyConfig(cfg)
	gv := corev1.SchemeGroupVersion
	c.GroupVersion = &gv
	c.APIPath = "/api"
	c.NegotiatedSerializer = codecs.WithoutConversion()
	rc, err := rest.RESTClientFor(c)
	if err != nil {
		return nil, fmt.Errorf("create REST client for Nodes: %w", err)
	}
	return &Client{rest: rc}, nil
}

// List lists Nodes.
func (c *Client) List(ctx context.Context, opts metav1.ListOptions) (*corev1.NodeList, error) {
	list := &corev1.NodeList{}
	err := c.rest.Get().Resource("nodes").VersionedParams(&opts, parameterCodec).Do(ctx).Into(list)
	if err != nil {
		return nil, err
	}
	return list, nil
}

// Watch watches Nodes.
func (c *Client) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	opts.Watch = true
	return c.rest.Get().Resource("nodes").VersionedParams(&opts, parameterCodec).Watch(ctx)
}

var _ Interface = (*Client)(nil)

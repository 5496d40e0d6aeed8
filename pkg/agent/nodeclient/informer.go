package nodeclient

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// Informer is a shared informer of Nodes with its lister: the method set of
// client-go's generated NodeInformer, without the clientset it needs.
type Informer struct {
	informer cache.SharedIndexInformer
	lister   corelisters.NodeLister
}

// NewInformer returns an informer of every Node through client, without
// periodic resync. The reflector streams the initial state (client-go's
// watch-list) unless client says it cannot (fake clientsets do, through
// IsWatchListSemanticsUnSupported).
func NewInformer(client Interface) *Informer {
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			return client.List(ctx, opts)
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			return client.Watch(ctx, opts)
		},
	}
	inf := cache.NewSharedIndexInformer(cache.ToListWatcherWithWatchListSemantics(lw, client), &corev1.Node{}, 0, cache.Indexers{})
	return &Informer{informer: inf, lister: corelisters.NewNodeLister(inf.GetIndexer())}
}

// Informer is the shared informer.
func (i *Informer) Informer() cache.SharedIndexInformer { return i.informer }

// Lister reads the informer's cache.
func (i *Informer) Lister() corelisters.NodeLister { return i.lister }

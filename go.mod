module github.com/noderoute/noderoute

go 1.26.8

require (
	github.com/Microsoft/go-winio v0.5.2 // indirect
	github.com/cenkalti/hub v1.0.1 // indirect
	github.com/cenkalti/rpc2 v0.0.0-20210604223624-c1acbc6ec984 // indirect
	github.com/contiv/libOpenflow v0.0.0-20210609050114-d967b14cc688 // indirect
	github.com/contiv/libovsdb v0.0.0-20170227191248-d0061a53e358 // indirect
	github.com/go-logr/logr v1.4.3 // indirect
	github.com/ovn-org/libovsdb v0.7.0 // indirect
	github.com/sirupsen/logrus v1.9.0 // indirect
	github.com/streamrail/concurrent-map v0.0.0-20160803124810-238fe79560e1 // indirect
	github.com/vishvananda/netlink v1.3.1 // indirect
	github.com/vishvananda/netns v0.0.5 // indirect
	github.com/wenyingd/ofnet v0.0.0-20210318032909-171b6795a2da // indirect
	golang.org/x/sys v0.47.0 // indirect
	k8s.io/api v0.37.2 // indirect
	k8s.io/apimachinery v0.37.2 // indirect
	k8s.io/client-go v0.37.2 // indirect
	k8s.io/klog/v2 v2.140.0 // indirect
)

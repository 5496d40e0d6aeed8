package deploy

import (
	"reflect"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"
)

// cleanupKustomizations are the clean-up DaemonSet's variants
// (docs/install.md, "Uninstall"), each with the agent kustomization whose
// nodes it cleans.
var cleanupKustomizations = map[string]string{
	"deploy/cleanup":        "deploy",
	"deploy/cleanup/base":   "deploy/base",
	"deploy/cleanup/netdev": "deploy/overlays/netdev",
}

// cleanupDaemonSet renders a clean-up kustomization: one DaemonSet, decoded
// strictly.
func cleanupDaemonSet(t *testing.T, dir string) *appsv1.DaemonSet {
	t.Helper()
	docs := documents(t, kustomize(t, dir))
	if len(docs) != 1 {
		t.Fatalf("kubectl kustomize %s: %d objects, want the DaemonSet alone", dir, len(docs))
	}
	ds := &appsv1.DaemonSet{}
	if err := yaml.UnmarshalStrict(docs[0], ds); err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	return ds
}

// TestCleanupManifests: the clean-up DaemonSet runs the agent's own ovs
// container and config on the agent's hostPaths, and `noderoute-agent
// cleanup` with the agent's --config, confined like the agent.
func TestCleanupManifests(t *testing.T) {
	for dir, agentDir := range cleanupKustomizations {
		t.Run(dir, func(t *testing.T) {
			ds := cleanupDaemonSet(t, dir)
			agent := decode(t, agentDir, kustomize(t, agentDir))
			if ds.Namespace != namespace || ds.Name != "noderoute-cleanup" {
				t.Errorf("DaemonSet %s/%s, want %s/noderoute-cleanup", ds.Namespace, ds.Name, namespace)
			}
			spec, aspec := &ds.Spec.Template.Spec, &agent.DaemonSet.Spec.Template.Spec
			if !reflect.DeepEqual(spec.Tolerations, aspec.Tolerations) || !spec.HostNetwork || !reflect.DeepEqual(spec.NodeSelector, aspec.NodeSelector) {
				t.Errorf("clean-up pods must go where the agent's went, in the host network: tolerations %v, nodeSelector %v, hostNetwork %v", spec.Tolerations, spec.NodeSelector, spec.HostNetwork)
			}
			if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
				t.Errorf("automountServiceAccountToken should be false: cleanup never talks to the API server")
			}
			// The ovs container is the agent's, byte for byte.
			if got, want := container(t, spec, "ovs"), container(t, aspec, "ovs"); !reflect.DeepEqual(got, want) {
				t.Errorf("ovs container differs from the agent DaemonSet's:\n%+v\nagent's:\n%+v", got, want)
			}
			cl := container(t, spec, "cleanup")
			if cl.RestartPolicy != nil {
				t.Errorf("cleanup must be a plain init container (runs to completion), has restartPolicy %v", *cl.RestartPolicy)
			}
			ag := container(t, aspec, "agent")
			wantArgs := append([]string{"cleanup"}, ag.Args...)
			if !slices.Equal(cl.Command, ag.Command) || !slices.Equal(cl.Args, wantArgs) || cl.Image != ag.Image {
				t.Errorf("cleanup runs %v %v (%s), want %v %v (%s)", cl.Command, cl.Args, cl.Image, ag.Command, wantArgs, ag.Image)
			}
			if !reflect.DeepEqual(cl.SecurityContext, ag.SecurityContext) {
				t.Errorf("cleanup's securityContext %+v, want the agent's %+v", cl.SecurityContext, ag.SecurityContext)
			}
			// Every volume it shares with the agent has the same source.
			for _, v := range spec.Volumes {
				av := volume(t, aspec, v.Name)
				if !reflect.DeepEqual(v.VolumeSource, av.VolumeSource) {
					t.Errorf("volume %s: %+v, the agent's: %+v", v.Name, v.VolumeSource, av.VolumeSource)
				}
			}
			for _, path := range []string{"/var/run/openvswitch", "/var/run/noderoute", "/etc/noderoute"} {
				if mountAt(cl, path) == nil {
					t.Errorf("cleanup container does not mount %s (the agent's)", path)
				}
			}
			if len(spec.Containers) != 1 {
				t.Errorf("containers %d, want one that waits", len(spec.Containers))
			}
			for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
				if c.Image != ag.Image {
					t.Errorf("container %s: image %s, want the agent's %s", c.Name, c.Image, ag.Image)
				}
			}
		})
	}
}

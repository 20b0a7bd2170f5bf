// Command etcd is etcd's server, built from the go.etcd.io/etcd/server/v3 module at the version
// k8s.io/kubernetes requires, so the control plane's etcd matches the one Kubernetes is tested with.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}

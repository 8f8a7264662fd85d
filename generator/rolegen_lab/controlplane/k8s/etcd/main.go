// Command etcd is the etcd server, built from go.etcd.io/etcd/server/v3 (its own go.mod cannot be
// `go install`ed because of replace directives).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}

// A client nobody on this project wrote the logic of: the CNI project's libcni and containerd's go-cni, from
// Debian's sources, driven by one JSON request on stdin. The tests use it to run our plugin the way real
// runtimes do: libcni fills runtimeConfig from capability args only when the conflist declares them, chains
// Debian's portmap and bandwidth after us, caches results and feeds them to CHECK and DEL; go-cni's Setup
// attaches several networks concurrently, as containerd's CRI does.
//
// Request: {"op": "add"|"check"|"del"|"setup"|"teardown", "binDirs": [...], "confFiles": [...],
//           "cacheDir": "...", "netns": "...", "containerId": "...", "ifname": "eth0",
//           "capabilityArgs": {...}, "args": [["K","V"], ...]}
// Answer (stdout): {"result": ...} or {"error": "...", "code": N} with exit status 1 (code: the plugin's CNI
// error code, when the failure was a plugin's error).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	gocni "github.com/containerd/go-cni"
	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
)

type request struct {
	Op             string                 `json:"op"`
	BinDirs        []string               `json:"binDirs"`
	ConfFiles      []string               `json:"confFiles"`
	CacheDir       string                 `json:"cacheDir"`
	Netns          string                 `json:"netns"`
	ContainerID    string                 `json:"containerId"`
	Ifname         string                 `json:"ifname"`
	CapabilityArgs map[string]interface{} `json:"capabilityArgs"`
	Args           [][2]string            `json:"args"`
}

func fail(err error) {
	answer := map[string]interface{}{"error": err.Error()}
	var pluginErr *types.Error
	if errors.As(err, &pluginErr) {
		answer["code"] = pluginErr.Code
	}
	out, _ := json.Marshal(answer)
	fmt.Println(string(out))
	os.Exit(1)
}

func succeed(result interface{}) {
	out, err := json.Marshal(map[string]interface{}{"result": result})
	if err != nil {
		fail(err)
	}
	fmt.Println(string(out))
}

// libcniOp runs one network list (the first conf file) through libcni.
func libcniOp(ctx context.Context, r request) {
	list, err := libcni.ConfListFromFile(r.ConfFiles[0])
	if err != nil {
		fail(err)
	}
	cni := libcni.NewCNIConfigWithCacheDir(r.BinDirs, r.CacheDir, nil)
	rt := &libcni.RuntimeConf{
		ContainerID:    r.ContainerID,
		NetNS:          r.Netns,
		IfName:         r.Ifname,
		Args:           r.Args,
		CapabilityArgs: r.CapabilityArgs,
	}
	switch r.Op {
	case "add":
		res, err := cni.AddNetworkList(ctx, list, rt)
		if err != nil {
			fail(err)
		}
		succeed(res)
	case "check":
		if err := cni.CheckNetworkList(ctx, list, rt); err != nil {
			fail(err)
		}
		succeed(nil)
	case "del":
		if err := cni.DelNetworkList(ctx, list, rt); err != nil {
			fail(err)
		}
		succeed(nil)
	default:
		fail(fmt.Errorf("unknown op %q", r.Op))
	}
}

// gocniOp attaches (or detaches) every conf file as one interface each, concurrently, as containerd does.
func gocniOp(ctx context.Context, r request) {
	opts := []gocni.Opt{gocni.WithPluginDir(r.BinDirs), gocni.WithInterfacePrefix("eth"), gocni.WithMinNetworkCount(len(r.ConfFiles))}
	for _, f := range r.ConfFiles {
		opts = append(opts, gocni.WithConfListFile(f))
	}
	g, err := gocni.New(opts...)
	if err != nil {
		fail(err)
	}
	switch r.Op {
	case "setup":
		res, err := g.Setup(ctx, r.ContainerID, r.Netns)
		if err != nil {
			fail(err)
		}
		succeed(res)
	case "teardown":
		if err := g.Remove(ctx, r.ContainerID, r.Netns); err != nil {
			fail(err)
		}
		succeed(nil)
	}
}

func main() {
	var r request
	if err := json.NewDecoder(os.Stdin).Decode(&r); err != nil {
		fail(err)
	}
	ctx := context.Background()
	switch r.Op {
	case "setup", "teardown":
		gocniOp(ctx, r)
	default:
		libcniOp(ctx, r)
	}
}

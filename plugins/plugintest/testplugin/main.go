// Command testplugin is a plugin for fault tests of plugin hosting. Its MCP
// server has the tools echo, getenv and child_pid, and its flags make it
// misbehave:
//
//	-stdout-noise      write a line to stdout before the handshake
//	-exit-status N     exit with status N before the handshake
//	-spawn-child       start `sleep 600` in its process group when configured
//
// Its config may set {"fail": "message"} to reject the config with that
// message.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/nexus-suite/nexus/plugins/sdk"
)

type config struct {
	Fail string `json:"fail"`
}

type echoInput struct {
	Text string `json:"text"`
}

type echoOutput struct {
	Text string `json:"text"`
}

type getenvInput struct {
	Name string `json:"name"`
}

type getenvOutput struct {
	Value   string `json:"value"`
	Present bool   `json:"present"`
}

type childOutput struct {
	PID int `json:"pid"`
}

func main() {
	stdoutNoise := flag.Bool("stdout-noise", false, "write a line to stdout before the handshake")
	exitStatus := flag.Int("exit-status", -1, "exit with this status before the handshake; -1 to serve")
	spawnChild := flag.Bool("spawn-child", false, "start `sleep 600` in the plugin's process group when configured")
	flag.Parse()

	if *stdoutNoise {
		fmt.Println("hello from a plugin that writes to stdout too early")
	}
	if *exitStatus >= 0 {
		fmt.Fprintln(os.Stderr, "testplugin: exiting before the handshake as asked")
		os.Exit(*exitStatus)
	}

	sdk.ServeConfigured(sdk.Manifest{
		Name:         "testplugin",
		Version:      "0.0.1",
		Description:  "Fault-test plugin.",
		ConfigSchema: json.RawMessage(`{"type":"object","properties":{"fail":{"type":"string"}}}`),
		Secrets:      []sdk.SecretSpec{{Name: "TESTPLUGIN_TOKEN", Description: "Any value; getenv returns it."}},
	}, func(_ context.Context, raw json.RawMessage) (*mcp.Server, error) {
		var cfg config
		if err := json.Unmarshal(raw, &cfg); err != nil {
			return nil, fmt.Errorf("invalid testplugin config: %w", err)
		}
		if cfg.Fail != "" {
			return nil, errors.New(cfg.Fail)
		}

		childPID := 0
		if *spawnChild {
			child := exec.Command("sleep", "600")
			if err := child.Start(); err != nil {
				return nil, fmt.Errorf("start child: %w", err)
			}
			childPID = child.Process.Pid
			fmt.Fprintf(os.Stderr, "testplugin: started child pid %d\n", childPID)
		}
		return newServer(childPID), nil
	})
}

func newServer(childPID int) *mcp.Server {
	server := mcp.NewServer(&mcp.Implementation{Name: "testplugin", Version: "0.0.1"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "echo", Description: "Return the text."},
		func(_ context.Context, _ *mcp.CallToolRequest, in echoInput) (*mcp.CallToolResult, echoOutput, error) {
			return nil, echoOutput{Text: in.Text}, nil
		})
	mcp.AddTool(server, &mcp.Tool{Name: "getenv", Description: "Return an environment variable of the plugin."},
		func(_ context.Context, _ *mcp.CallToolRequest, in getenvInput) (*mcp.CallToolResult, getenvOutput, error) {
			value, ok := os.LookupEnv(in.Name)
			return nil, getenvOutput{Value: value, Present: ok}, nil
		})
	mcp.AddTool(server, &mcp.Tool{Name: "child_pid", Description: "Return the pid of the child started with -spawn-child, or 0."},
		func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, childOutput, error) {
			return nil, childOutput{PID: childPID}, nil
		})
	return server
}

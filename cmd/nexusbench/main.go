// Command nexusbench measures the hot path of nexus: the authenticated
// GET /v1/entitlements, which the user's actor admits and which the
// handler serves from the actor's entitlement snapshot. It compares the request rate of a nexus server with
// that of a bare fasthttp server returning a body of the same size, and
// measures the memory that idle user actors hold. It also measures the
// logins per second of POST /v1/auth/login, which verifies an argon2id
// password hash with the default parameters.
//
//	nexusbench run  [-duration 10s] [-connections 32] [-login-connections 2] [-warmup 2s] [-actors 100000]
//	nexusbench bare -listen 127.0.0.1:PORT
//	nexusbench load -url URL [-method GET] [-header 'Name: value'] [-body TEXT]
//	                [-duration 10s] [-connections 32] [-warmup 2s]
//
// run is the whole benchmark: it builds nexus, starts every server and load
// generator as a separate process of this executable or of nexus, and prints
// a table. bare and load are its building blocks. Every server binds to the
// loopback interface and the load generator sends requests to loopback
// addresses only.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
)

// errUsage marks an error in the command line; main prints the usage after it.
var errUsage = errors.New("invalid command line")

func main() {
	if err := runCommand(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "nexusbench:", err)
		if errors.Is(err, errUsage) {
			fmt.Fprint(os.Stderr, usage)
			os.Exit(2)
		}
		os.Exit(1)
	}
}

const usage = `usage:
  nexusbench run  [-duration 10s] [-connections 32] [-login-connections 2] [-warmup 2s]
                  [-actors 100000] [-keep]
  nexusbench bare -listen 127.0.0.1:PORT
  nexusbench load -url URL [-method GET] [-header 'Name: value'] [-body TEXT]
                  [-duration 10s] [-connections 32] [-warmup 2s]
Run 'nexusbench COMMAND -h' for the options of one command.
`

func runCommand(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: missing command", errUsage)
	}

	command, rest := args[0], args[1:]
	switch command {
	case "run":
		return runBenchmark(rest)
	case "bare":
		return runBare(rest)
	case "load":
		return runLoad(rest)
	case "-h", "-help", "--help", "help":
		fmt.Print(usage)
		return nil
	default:
		return fmt.Errorf("%w: unknown command %q", errUsage, command)
	}
}

// newFlagSet returns a flag set that reports errors instead of exiting, so
// main prints them the same way as every other error.
func newFlagSet(name string) *flag.FlagSet {
	flags := flag.NewFlagSet("nexusbench "+name, flag.ContinueOnError)
	flags.SetOutput(os.Stderr)
	return flags
}

// parseFlags parses args into flags and rejects positional arguments.
func parseFlags(flags *flag.FlagSet, args []string) error {
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		return fmt.Errorf("%s: %w", flags.Name(), errUsage)
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("%w: %s takes no arguments, got %q", errUsage, flags.Name(), flags.Args())
	}
	return nil
}

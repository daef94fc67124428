// Command shardstack shows shardstack off and reproduces its experiments.
//
//	shardstack demo [flags]          open, use and close connections between two stacks
//	shardstack lab backlog [flags]   the seed documents' listen-backlog experiments
package main

import (
	"fmt"
	"os"
)

func main() {
	args := os.Args[1:]
	cmd := "demo"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "demo":
		err = runDemo(args, os.Stdout)
	case "lab":
		err = runLab(args, os.Stdout)
	case "help", "-h", "--help":
		usage()
		return
	default:
		fmt.Fprintf(os.Stderr, "shardstack: unknown command %q\n", cmd)
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "shardstack:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage:
  shardstack demo [--conns N] [--concurrency C] [--shards S] [--duration D] [--json]
                  [--cpuprofile FILE] [--memprofile FILE]
  shardstack lab backlog [--profile linux|linux-3.12] [--backlog N] [--clients M] [--accept]
                  [--abort-on-overflow] [--syncookies 0|1|2] [--client-interval D]
                  [--seconds T] [--json]
`)
}

// Command mor is the gomor command-line tool: backend checks, model description,
// tokenization, training, evaluation, ablations and router analysis.
//
// Each subcommand lives in its own file and registers itself from an init function,
// so adding a subcommand touches no other file.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
)

// command is one subcommand of mor.
type command struct {
	name    string
	summary string                    // one line for `mor help`
	run     func(args []string) error // args excludes the subcommand name
}

var commands = map[string]command{}

// register adds a subcommand; it panics on a duplicate name because that is a programming error.
func register(c command) {
	if _, found := commands[c.name]; found {
		panic(fmt.Sprintf("mor: subcommand %q registered twice", c.name))
	}
	commands[c.name] = c
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "help" || os.Args[1] == "-h" || os.Args[1] == "--help" {
		printUsage()
		return
	}
	name := os.Args[1]
	c, found := commands[name]
	if !found {
		fmt.Fprintf(os.Stderr, "mor: unknown command %q; run `mor help` for the list of commands\n", name)
		os.Exit(2)
	}
	err := c.run(os.Args[2:])
	if errors.Is(err, flag.ErrHelp) {
		// The flag package has printed the usage text that --help requests.
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "mor %s: %v\n", name, err)
		os.Exit(1)
	}
}

func printUsage() {
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("mor: Mixture-of-Recursions transformers on GoMLX.\n\nUsage: mor <command> [flags]\n\nCommands:\n")
	for _, name := range names {
		fmt.Fprintf(&b, "  %-10s %s\n", name, commands[name].summary)
	}
	b.WriteString("\nRun `mor <command> --help` for the flags of a command.\n")
	fmt.Print(b.String())
}

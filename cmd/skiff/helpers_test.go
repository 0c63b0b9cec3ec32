package main

import "github.com/urfave/cli/v2"

// testDeployCommand stands in for a command with its own flags, so argument handling is tested apart from
// what deploy does.
func testDeployCommand() *cli.Command {
	return &cli.Command{
		Name: "deploy-test",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "tag"},
			&cli.BoolFlag{Name: "force"},
		},
		Action: func(*cli.Context) error { return nil },
	}
}

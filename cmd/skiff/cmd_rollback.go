package main

import (
	"context"

	"github.com/skiffdeploy/skiff/deploy"
	"github.com/skiffdeploy/skiff/inventory"
	"github.com/urfave/cli/v2"
)

func rollbackCommand() *cli.Command {
	return &cli.Command{
		Name:      "rollback",
		Usage:     "make an earlier release of APP live again (the previous one, or --to ID)",
		ArgsUsage: "APP",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "to", Usage: "release `ID` to go back to"},
			&cli.BoolFlag{Name: "force", Usage: "allow going back to a release that history marks as failed"},
			composeFlag(),
		},
		Action: withApp("rollback", true, func(c *cli.Context, a *appRun) error {
			if a.app.Kind == inventory.KindImage {
				return a.rollbackImage(c)
			}
			a.opts.To, a.opts.Force = c.String("to"), c.Bool("force")
			outs, errs := a.each(c.Context, "rollback", func(ctx context.Context, h *inventory.Host, conn deploy.HostConn) *deploy.Outcome {
				return deploy.RollbackSource(ctx, conn, a.app, h.Name, a.opts)
			})
			return a.finish("rollback", outs, errs)
		}),
	}
}

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/skiffdeploy/skiff/inventory"
	"github.com/urfave/cli/v2"
)

func inventoryCommand() *cli.Command {
	return &cli.Command{
		Name:  "inventory",
		Usage: "print the resolved inventory (defaults applied, groups expanded)",
		Action: func(c *cli.Context) error {
			inv, err := loadInventory(c.String("inventory"))
			if err != nil {
				return err
			}
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					*inventory.Inventory
					Groups map[string][]string `json:"groups"`
				}{inv, inv.Groups()})
			}
			return printInventory(c.App.Writer, inv)
		},
	}
}

func printInventory(w io.Writer, inv *inventory.Inventory) error {
	var b strings.Builder
	fmt.Fprintf(&b, "inventory %s\n\nhosts:\n", inv.File)
	for _, name := range slices.Sorted(maps.Keys(inv.Hosts)) {
		h := inv.Hosts[name]
		fmt.Fprintf(&b, "  %-16s %s@%s:%d", name, h.User, h.Address, h.Port)
		if h.Jump != "" {
			fmt.Fprintf(&b, " via %s", h.Jump)
		}
		if len(h.Groups) > 0 {
			fmt.Fprintf(&b, " groups=%s", strings.Join(h.Groups, ","))
		}
		b.WriteString("\n")
	}
	b.WriteString("\ngroups:\n")
	groups := inv.Groups()
	for _, g := range slices.Sorted(maps.Keys(groups)) {
		fmt.Fprintf(&b, "  %-16s %s\n", g, strings.Join(groups[g], ","))
	}
	if len(inv.Apps) > 0 {
		b.WriteString("\napps:\n")
	}
	for _, name := range slices.Sorted(maps.Keys(inv.Apps)) {
		a := inv.Apps[name]
		hosts, _ := inv.AppHosts(a, nil)
		hn := make([]string, len(hosts))
		for i, h := range hosts {
			hn[i] = h.Name
		}
		fmt.Fprintf(&b, "  %-16s %-6s path=%s hosts=%s", name, a.Kind, a.Path, strings.Join(hn, ","))
		if a.Kind == inventory.KindImage {
			fmt.Fprintf(&b, " image=%s service=%s", a.Image, a.Service)
		} else if a.Source != "" {
			fmt.Fprintf(&b, " source=%s", a.Source)
		}
		for _, bd := range a.Builds {
			fmt.Fprintf(&b, " build=%s:%s", bd.Name, bd.Path)
		}
		b.WriteString("\n")
	}
	if len(inv.Schedules) > 0 {
		b.WriteString("\nschedules:\n")
	}
	for _, sc := range inv.Schedules {
		fmt.Fprintf(&b, "  %-16s %-8s %q hosts=%s\n", sc.Name, sc.Job, sc.Cron, strings.Join(sc.Hosts, ","))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

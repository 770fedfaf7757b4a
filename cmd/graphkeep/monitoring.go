package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/graphkeep/graphkeep/api/monitoring"
)

// monitoringCmd prints what Prometheus and Grafana need to watch
// graphkeep serve: nothing to write by hand, and it matches the binary.
func monitoringCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "monitoring",
		Short: "Print Prometheus alerting rules and a Grafana dashboard for graphkeep serve's /metrics",
	}
	rules := &cobra.Command{
		Use:   "rules",
		Short: "Print the Prometheus alerting rules (YAML: save it and list it under rule_files)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := os.Stdout.Write(monitoring.Rules())
			return err
		},
	}
	grafana := &cobra.Command{
		Use:   "grafana",
		Short: "Print the Grafana dashboard (JSON: import it, pick the Prometheus data source)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := os.Stdout.Write(monitoring.Grafana())
			return err
		},
	}
	cmd.AddCommand(rules, grafana)
	return cmd
}

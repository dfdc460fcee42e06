package main

import "github.com/spf13/cobra"

func addBackupJobCmds(parent *cobra.Command, g *globals) {}

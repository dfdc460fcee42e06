package main

import "github.com/spf13/cobra"

func newAudioCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "audio", Short: "Inspect and control the audio service"}
}

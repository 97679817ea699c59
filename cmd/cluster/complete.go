package main

import (
	"cmp"
	"os"
	"path/filepath"
	"strings"

	"github.com/shoal-dev/shoal/cluster"
	"github.com/shoal-dev/shoal/internal/store"
	"github.com/spf13/cobra"
)

// clusterNames lists the clusters of the store under root starting with
// prefix; it only reads (completion must not create a store).
func clusterNames(root, prefix string) []string {
	states, err := cluster.List(&store.Store{Root: root})
	if err != nil {
		return nil
	}
	var out []string
	for _, s := range states {
		if strings.HasPrefix(s.Name, prefix) {
			out = append(out, s.Name)
		}
	}
	return out
}

// hclFiles lists the .hcl files next to what is being typed.
func hclFiles(toComplete string) []string {
	dir, base := filepath.Split(toComplete)
	look := dir
	look = cmp.Or(look, ".")
	entries, err := os.ReadDir(look)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".hcl") && strings.HasPrefix(e.Name(), base) {
			out = append(out, dir+e.Name())
		}
	}
	return out
}

// completeFile completes a cluster file: .hcl files and folders.
func completeFile(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return []string{"hcl"}, cobra.ShellCompDirectiveFilterFileExt
}

// completeFileOrName completes FILE|NAME: the store's clusters and the
// .hcl files here.
func completeFileOrName(g *globals) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(_ *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return append(clusterNames(g.storagePath, toComplete), hclFiles(toComplete)...), cobra.ShellCompDirectiveNoFileComp
	}
}

// completeName completes a cluster name.
func completeName(g *globals) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(_ *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return clusterNames(g.storagePath, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

package main

import (
	"github.com/shoal-dev/shoal/internal/store"
	"github.com/spf13/cobra"
)

// swarmFlags are create's swarm flags.
type swarmFlags struct{}

func (s *swarmFlags) bind(cmd *cobra.Command) {}

func (s *swarmFlags) toStore(cmd *cobra.Command) (*store.Swarm, error) { return nil, nil }

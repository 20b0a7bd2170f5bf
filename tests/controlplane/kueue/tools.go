//go:build tools

// Package kueue pins Kueue's manager, which the cluster tier runs beside the control plane, so go mod tidy
// keeps its dependencies in go.sum. Its own module: Kueue resolves its Kubernetes libraries by itself.
package kueue

import _ "sigs.k8s.io/kueue/cmd/kueue"

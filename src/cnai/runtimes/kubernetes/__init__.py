"""The Kubernetes engine: CRDs and install manifests generated from cnai's types, a Store
over the Kubernetes API (operator mode), Lease leader election, and a runtime that
renders cnai Pods, gangs and inference revisions to Kubernetes objects.

This is the only package that imports the official ``kubernetes`` client, and only
lazily (to load kubeconfig and in-cluster credentials), so ``cnai --help`` stays fast
and the embedded platform never needs it installed.
"""

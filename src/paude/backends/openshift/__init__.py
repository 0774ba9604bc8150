"""The OpenShift/Kubernetes backend."""

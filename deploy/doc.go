// Package deploy holds no code: its tests check the deployment files beside
// it (the container image's entry point, docker-compose.yml at the
// repository root, the Kubernetes manifests in k8s/ and
// mappings.example.yaml) against the cohortsync they deploy, so that none of
// them names a flag, a variable, a mapping field or a mounted file that does
// not exist. Compose and Kubernetes themselves are not run: they are not
// available to the tests, and the files are checked where they meet the
// program.
package deploy

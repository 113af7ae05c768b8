// Package docker tests Seshat as operators run it: the FROM scratch image
// that `make image` builds, three containers started from
// cmd/seshatd/docker-compose.yml, redis-cli on the published ports,
// docker stop and docker start, and Prometheus scrapes of each node
// checked against INFO. It is skipped, saying why, where Docker or
// docker-compose is not installed or the daemon does not answer.
package docker

// Package docker tests Seshat as operators run it: the FROM scratch image
// that `make image` builds, three containers started from
// cmd/seshatd/docker-compose.yml, redis-cli on the published ports,
// docker stop and docker start, and Prometheus scrapes of each node
// checked against INFO (TestComposeCluster, skipped, saying why, where
// Docker, docker-compose or redis-cli is missing or the daemon does not
// answer). The same metrics checks, and the JSON log fields, also run on
// plain seshatd processes (TestMetricsOfProcesses), so that they are
// tested where Docker is not.
package docker

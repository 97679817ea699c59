# The lab: a swarm of 3 managers and 2 workers, each host a container on the
# local Docker Engine (systemd, sshd and its own dockerd), with a private
# registry on the first manager. `make lab` runs `cluster up` on this file.

cluster "lab" {}

variable "image_archive" {
  # registry:2 and busybox, built offline by `test/lab/lab.sh archive`:
  # nothing can be pulled in the lab.
  default     = "/var/cache/shoal-lab/images.tar"
  description = "a docker-save archive loaded on every node"
}

variable "workers" {
  default = 2
}

defaults {
  driver = "docker"
  docker {
    image   = "shoal/node:bookworm"
    network = "shoal-lab-cluster"
  }
  image_archives = [var.image_archive]
}

machine "manager" {
  count  = 3 # manager-1 .. manager-3: Raft keeps going when one is lost
  role   = "manager"
  labels = { tier = "control" }
}

machine "worker" {
  count  = var.workers
  role   = "worker"
  labels = { tier = "apps" }
}

registry {
  node = "manager-1"
  port = 5000
}

# The apps: examples/app's stack (a web service built from its directory and
# pushed to the registry, scaled to two, with a config and a secret; a
# poller on every node calling it over an overlay network), deployed and
# waited for once the swarm is ready. 'docker stack services demo' shows it.
stack "demo" {
  compose = ["app/docker-compose.yml"]
}

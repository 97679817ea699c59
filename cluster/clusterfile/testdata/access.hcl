
cluster "c" {}
variable "pw" { sensitive = true }
variable "sudo_pw" {
  sensitive = true
  default   = "fallback"
}
machine "edge" {
  role   = "manager"
  driver = "ssh"
  ssh {
    host          = "10.0.0.5"
    user          = "hadoop"
    password      = var.pw
    sudo_password = var.sudo_pw
    proxy_jump    = "ops@bastion:2200"
  }
  advertise_addr = "192.168.56.10"
}

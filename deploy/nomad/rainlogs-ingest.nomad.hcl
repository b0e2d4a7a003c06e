# Nomad job for the RainLogs ingest service. Run it with
#   nomad job run deploy/nomad/rainlogs-ingest.nomad.hcl
# once `rainlogs migrate` and `rainlogs provision` have run against the same database and NATS.
#
# Secrets come from the Nomad variable nomad/jobs/rainlogs-ingest, one item per secret file:
#   nomad var put nomad/jobs/rainlogs-ingest \
#     database_url=… s3_secret_key=…
# A task may read the variables under nomad/jobs/<its job id> without any ACL policy, and no other
# job's tasks may, so each job sees only the secrets it needs. Templates write them into the
# task's secrets/ directory (/secrets in the container), read through RAINLOGS__…_FILE variables:
# never the secret itself in the environment.
#
# services/rainlogs/tests/deploy_files.rs checks the command, every RAINLOGS__ key, the ports
# and the secret files used here against this build.

job "rainlogs-ingest" {
  type        = "service"
  datacenters = ["eu-central"]

  group "ingest" {
    count = 2

    network {
      # Health, readiness and metrics (never on the API port).
      port "telemetry" {
        static = 9464
      }
      # Where Cloudflare Logpush pushes; behind a TLS proxy Cloudflare can reach.
      port "ingest" {
        static = 8090
      }
    }

    service {
      name = "rainlogs-ingest"
      port = "telemetry"

      check {
        type     = "http"
        path     = "/ready"
        interval = "10s"
        timeout  = "3s"
      }
    }

    task "ingest" {
      driver = "docker"

      config {
        image = "rainlogs:latest"
        args  = ["run", "--service", "ingest"]
        # The Docker driver publishes only the ports listed here.
        ports = ["telemetry", "ingest"]
      }

      env {
        RAINLOGS__NATS__URL                          = "nats://nats.service.consul:4222"
        RAINLOGS__DATABASE__URL_FILE                 = "/secrets/database_url"
        RAINLOGS__STORE__URL                         = "s3://rainlogs-archive/prod"
        RAINLOGS__STORE__ENDPOINT                    = "https://s3.example.eu"
        RAINLOGS__STORE__REGION                      = "eu-central-1"
        RAINLOGS__STORE__PATH_STYLE                  = "true"
        RAINLOGS__STORE__ACCESS_KEY_ID               = "rainlogs"
        RAINLOGS__STORE__SECRET_ACCESS_KEY_FILE      = "/secrets/s3_secret_key"
        RAINLOGS__TELEMETRY__LISTEN                  = "0.0.0.0:9464"
        RAINLOGS__INGEST__LISTEN                     = "0.0.0.0:8090"
      }

      template {
        data        = "{{ with nomadVar \"nomad/jobs/rainlogs-ingest\" }}{{ .database_url }}{{ end }}"
        destination = "secrets/database_url"
        perms       = "0600"
        change_mode = "restart"
      }

      template {
        data        = "{{ with nomadVar \"nomad/jobs/rainlogs-ingest\" }}{{ .s3_secret_key }}{{ end }}"
        destination = "secrets/s3_secret_key"
        perms       = "0600"
        change_mode = "restart"
      }




      # Longer than service.shutdown_timeout (30 s), so SIGTERM can finish in-flight work.
      kill_timeout = "40s"
      kill_signal  = "SIGTERM"

      resources {
        cpu    = 500
        memory = 512
      }
    }
  }
}

#!/bin/sh
# What the official rabbitmq image does for the variables keyward uses: listeners on every
# interface, guest/guest usable from other containers, RABBITMQ_DEFAULT_USER / _PASS / _VHOST.
set -eu
[ "${1:-}" = rabbitmq-server ] || exec "$@"
{
  echo 'loopback_users.guest = false'
  echo 'listeners.tcp.default = 5672'
  echo 'management.tcp.port = 15672'
  [ -n "${RABBITMQ_DEFAULT_USER:-}" ] && echo "default_user = $RABBITMQ_DEFAULT_USER"
  [ -n "${RABBITMQ_DEFAULT_PASS:-}" ] && echo "default_pass = $RABBITMQ_DEFAULT_PASS"
  [ -n "${RABBITMQ_DEFAULT_VHOST:-}" ] && echo "default_vhost = $RABBITMQ_DEFAULT_VHOST"
  true
} > /etc/rabbitmq/rabbitmq.conf
exec "$@"

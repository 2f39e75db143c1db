#!/usr/bin/env bash
# Starts a tansu broker (an Apache-Kafka-protocol broker) for the Kafka tests
# and for trying the Kafka sink by hand.
#
#   scripts/kafka-broker.sh DIR [--port PORT] [--topic NAME]...
#
# Listens on 127.0.0.1 only and keeps its data in DIR/tansu.db (SQLite), so a
# broker killed and started again on the same DIR and PORT still has every
# record. Waits until the broker answers, creates the topics (3 partitions;
# one that exists already is fine), then prints `port=PORT pid=PID` and exits;
# the broker runs on (stop it with kill PID). Its log is DIR/broker.log.
#
# Installs tansu with cargo if it is not on PATH: 8-20 minutes on a 2-core
# machine, once. Without the libsql feature tansu has no storage engine
# ("FeatureNotEnabled").
set -euo pipefail

usage() { echo "usage: $0 DIR [--port PORT] [--topic NAME]..." >&2; exit 2; }
[ $# -ge 1 ] || usage
dir=$1; shift
port=
topics=()
while [ $# -gt 0 ]; do
    case $1 in
        --port) port=${2:?}; shift 2 ;;
        --topic) topics+=("${2:?}"); shift 2 ;;
        *) usage ;;
    esac
done

export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v tansu >/dev/null; then
    echo "kafka-broker.sh: installing tansu (cargo install, several minutes)" >&2
    cargo install tansu --locked --features libsql,dynostore >&2
fi

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if [ -z "$port" ]; then
    for _ in $(seq 50); do
        candidate=$((20000 + RANDOM % 40000))
        if ! listening "$candidate"; then port=$candidate; break; fi
    done
    [ -n "$port" ] || { echo "kafka-broker.sh: no free port found" >&2; exit 1; }
elif listening "$port"; then
    echo "kafka-broker.sh: 127.0.0.1:$port is already in use" >&2
    exit 1
fi

mkdir -p "$dir"
cd "$dir"
url=tcp://127.0.0.1:$port
# The sqlite:// path is relative to the working directory (DIR). setsid: the
# broker outlives this script and is not hit by signals sent to its group.
setsid tansu broker --listener-url "$url" --advertised-listener-url "$url" \
    --storage-engine sqlite://tansu.db >>broker.log 2>&1 </dev/null &
pid=$!

for _ in $(seq 300); do
    listening "$port" && break
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "kafka-broker.sh: tansu exited at start; see $dir/broker.log:" >&2
        tail -5 broker.log >&2
        exit 1
    fi
    sleep 0.1
done
listening "$port" || { kill "$pid"; echo "kafka-broker.sh: tansu did not listen on $port" >&2; exit 1; }

for topic in "${topics[@]}"; do
    if ! out=$(tansu topic create --broker "$url" --partitions 3 "$topic" 2>&1); then
        case $out in
            *xists*) ;;
            *) kill "$pid"; echo "kafka-broker.sh: creating topic $topic: $out" >&2; exit 1 ;;
        esac
    fi
done
echo "port=$port pid=$pid"

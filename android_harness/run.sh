#!/bin/sh
# mobiledeploy device harness: pushed next to the model, run with `sh run.sh ...` on the phone.
# POSIX sh only (Android's mksh, toybox, busybox, dash); every device file is optional.
#
#   sh run.sh --info
#   sh run.sh --binary BIN --graph MODEL --exact [--threads N] [--cpu-mask auto|HEX] [--lib-dir DIR] -- FLAGS...
#   sh run.sh --binary BIN --graph MODEL [--threads N] [--runs N] [--warmup N] [--min-secs S]
#             [--cpu-mask auto|HEX] [--op-profiling] [-- EXTRA_BENCHMARK_MODEL_FLAGS...]   (classic flags added)
#
# With --exact the binary gets --graph=MODEL and exactly the FLAGS after `--` (the host knows which
# tool it is and which flags it accepts). --lib-dir goes first on LD_LIBRARY_PATH (LiteRT's GPU
# accelerator library).
#
# Prints the runner's output (stderr merged), then ONE block for the host:
#   MOBILEDEPLOY-BEGIN
#   key=value            (device facts, thermal_before.*, thermal_after.*, cpu_mask, runner_exit)
#   MOBILEDEPLOY-END
# and exits with the runner's exit status. Paths come only from the arguments.
# MOBILEDEPLOY_SYSFS (default empty) prefixes /sys, so tests can give a fake cpufreq/thermal tree.

harness_version=2
sysfs=${MOBILEDEPLOY_SYSFS:-}
cpu_root=$sysfs/sys/devices/system/cpu
thermal_root=$sysfs/sys/class/thermal

mode=run
binary=
graph=
threads=1
runs=50
warmup=5
min_secs=0
cpu_mask=auto
op_profiling=false
lib_dir=
exact=false

usage_error() {
    printf 'mobiledeploy harness: %s\n' "$*" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case $1 in
        --info) mode=info ;;
        --op-profiling) op_profiling=true ;;
        --exact) exact=true ;;
        --binary|--graph|--threads|--runs|--warmup|--min-secs|--cpu-mask|--lib-dir)
            [ $# -ge 2 ] || usage_error "$1 needs a value"
            case $1 in
                --binary) binary=$2 ;;
                --graph) graph=$2 ;;
                --threads) threads=$2 ;;
                --runs) runs=$2 ;;
                --warmup) warmup=$2 ;;
                --min-secs) min_secs=$2 ;;
                --cpu-mask) cpu_mask=$2 ;;
                --lib-dir) lib_dir=$2 ;;
            esac
            shift ;;
        --) shift; break ;;
        *) usage_error "unknown argument: $1" ;;
    esac
    shift
done

emit() {
    printf '%s=%s\n' "$1" "$2"
}

one_line() {
    tr '\r\n' '  ' | sed 's/ *$//'
}

prop() {
    command -v getprop >/dev/null 2>&1 || return 1
    getprop "$1" 2>/dev/null | one_line
}

facts() {
    emit harness_version "$harness_version"
    for p in ro.product.model ro.product.manufacturer ro.product.device ro.board.platform ro.soc.model \
             ro.product.cpu.abi ro.build.version.release ro.build.version.sdk; do
        v=$(prop "$p") && [ -n "$v" ] && emit "prop.$p" "$v"
    done
    n=0
    for d in "$cpu_root"/cpu[0-9]*; do
        [ -d "$d" ] || continue
        c=${d##*/}
        n=$((n + 1))
        v=$(cat "$d/cpufreq/cpuinfo_max_freq" 2>/dev/null) && [ -n "$v" ] && emit "cpu.$c.max_khz" "$v"
        v=$(cat "$d/cpufreq/scaling_governor" 2>/dev/null) && [ -n "$v" ] && emit "cpu.$c.governor" "$v"
    done
    emit cores "$n"
    for z in "$thermal_root"/thermal_zone*; do
        [ -d "$z" ] || continue
        v=$(one_line 2>/dev/null < "$z/type") && [ -n "$v" ] && emit "thermal.${z##*/}.type" "$v"
    done
}

temps() {
    for z in "$thermal_root"/thermal_zone*; do
        [ -r "$z/temp" ] || continue
        v=$(cat "$z/temp" 2>/dev/null) && [ -n "$v" ] && emit "thermal_$1.${z##*/}" "$v"
    done
}

max_khz() {
    v=$(cat "$1/cpufreq/cpuinfo_max_freq" 2>/dev/null) || return 1
    case $v in
        ''|*[!0-9]*) return 1 ;;
    esac
    printf '%s\n' "$v"
}

# Hex mask of the fastest cores: whole frequency tiers, fastest first, until >= $1 cores.
# Empty when no frequency is known or every core is equally fast.
auto_mask() {
    want=$1
    mask=0
    count=0
    known=0
    below=
    for d in "$cpu_root"/cpu[0-9]*; do
        max_khz "$d" >/dev/null && known=$((known + 1))
    done
    while [ "$count" -lt "$want" ]; do
        best=
        for d in "$cpu_root"/cpu[0-9]*; do
            f=$(max_khz "$d") || continue
            if [ -n "$below" ] && [ "$f" -ge "$below" ]; then continue; fi
            if [ -z "$best" ] || [ "$f" -gt "$best" ]; then best=$f; fi
        done
        [ -n "$best" ] || break
        for d in "$cpu_root"/cpu[0-9]*; do
            f=$(max_khz "$d") || continue
            if [ "$f" = "$best" ]; then
                c=${d##*/cpu}
                mask=$((mask | (1 << c)))
                count=$((count + 1))
            fi
        done
        below=$best
    done
    if [ "$count" -gt 0 ] && [ "$count" -lt "$known" ]; then
        printf '%x\n' "$mask"
    fi
}

facts_text=$(facts)
before_text=$(temps before)

if [ "$mode" = info ]; then
    echo MOBILEDEPLOY-BEGIN
    printf '%s\n' "$facts_text"
    [ -n "$before_text" ] && printf '%s\n' "$before_text"
    echo MOBILEDEPLOY-END
    exit 0
fi

[ -n "$binary" ] || usage_error "--binary is required"
[ -n "$graph" ] || usage_error "--graph is required"

case $cpu_mask in
    auto) mask=$(auto_mask "$threads") ;;
    0x*|0X*) mask=${cpu_mask#0[xX]} ;;
    *) mask=$cpu_mask ;;
esac

if [ "$exact" = true ]; then
    set -- --graph="$graph" "$@"
else
    set -- --graph="$graph" --num_threads="$threads" --num_runs="$runs" --warmup_runs="$warmup" \
        --min_secs="$min_secs" --warmup_min_secs=0 --use_xnnpack=true "$@"
    [ "$op_profiling" = true ] && set -- "$@" --enable_op_profiling=true
fi
if [ -n "$lib_dir" ]; then
    LD_LIBRARY_PATH=$lib_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    export LD_LIBRARY_PATH
fi

used_taskset=0
if [ ! -f "$binary" ]; then
    echo "ERROR: runner not found: $binary"
    rc=127
elif [ -n "$mask" ] && command -v taskset >/dev/null 2>&1; then
    used_taskset=1
    taskset "$mask" "$binary" "$@" 2>&1
    rc=$?
else
    "$binary" "$@" 2>&1
    rc=$?
fi

echo MOBILEDEPLOY-BEGIN
printf '%s\n' "$facts_text"
[ -n "$before_text" ] && printf '%s\n' "$before_text"
temps after
emit cpu_mask "$mask"
emit taskset "$used_taskset"
emit runner_exit "$rc"
echo MOBILEDEPLOY-END
exit "$rc"

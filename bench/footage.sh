# shellcheck shell=bash
# `scripts/bench --footage`, sourced by scripts/bench (its TMP, PIDS, say,
# die and stop): the motion regression scenes through lookout's detector and
# through Debian's `motion` at its defaults, each judged against the same
# truth (testdata/footage/scenes.toml) by bench/footage.rs.
#
# lookout replays each scene frame by frame (no waiting), alone on the
# machine, so its CPU figures are clean. `motion` cannot read an MJPEG file at
# its frame rate, so `footage serve` plays each scene to it over HTTP in real
# time, as a camera would, and says when the first frame went out (scene time
# 0); `motion`'s on_event_start and on_event_end hooks write the times.
# `motion` runs twice on every scene at once (two processes on the same
# served scene): at its defaults (event_gap 60 s), and with event_gap 5 s,
# lookout's cooldown; nothing else in its configuration is set but the input,
# the hooks, and no movie files.

# Scenes played to `motion` at a time (two `motion` processes each). Two
# keeps the 2-core machine far from busy, so frames go out and events come
# back on time; the real-time part takes about 5 minutes.
FOOTAGE_JOBS=${FOOTAGE_JOBS:-2}
# Seconds after a scene's last frame before its `motion` is stopped: its
# decoder's buffer and an event's start need well under that.
FOOTAGE_TAIL=3
TRUTH=$ROOT/testdata/footage/scenes.toml
SCENES=$TMP/scenes

say "building the scenes (scripts/scenes) and the footage bench ($PROFILE)"
scripts/scenes "$SCENES" >"$TMP/scenes.log" 2>&1 &
scenes_pid=$!
PIDS+=("$scenes_pid")
"${BUILD[@]}" --example footage
FOOTAGE=$TARGET_DIR/$PROFILE_DIR/examples/footage
wait "$scenes_pid" || { cat "$TMP/scenes.log" >&2; die "scripts/scenes failed"; }
# The analysis CPU the README quotes is per 1280x720 frame: the walkers
# scaled to that size, encoded as the scenes are.
ffmpeg -v error -nostdin -y -f mjpeg -framerate 10 -i "$SCENES/walkers.mjpeg" \
  -vf "scale=1280:720:flags=bicubic,format=yuvj420p" -c:v mjpeg -q:v 4 -f mjpeg \
  "$TMP/walkers_720p.mjpeg"

say "lookout: replaying every scene at default settings"
"$FOOTAGE" lookout --truth "$TRUTH" --scenes "$SCENES" --hd720 "$TMP/walkers_720p.mjpeg" \
  >"$TMP/lookout.md"

# ---------------------------------------------------------------- motion
MOTION_NOTE=""
if ! command -v motion >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 &&
    apt-cache policy motion 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    say "installing motion (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 install -y -qq \
      --no-install-recommends motion >"$TMP/apt.log" 2>&1 || true
  fi
fi
if ! command -v motion >/dev/null 2>&1; then
  MOTION_NOTE="skipped: motion not installed"
  say "motion: $MOTION_NOTE"
else
  MOTION_VERSION=$({ motion -h 2>&1 || true; } | sed -n 's/.*[Vv]ersion \([0-9.]*\).*/\1/p' | head -1)
  M=$TMP/motion
  mkdir -p "$M"
  # The hook is a script because motion expands %-codes in the command
  # itself (date's %N would become motion's noise level).
  printf '#!/bin/sh\ndate +%%s.%%N >>"$1"\n' >"$M/hook"
  chmod +x "$M/hook"
  "$FOOTAGE" serve --scenes "$SCENES" >"$M/served.log" 2>&1 &
  SERVE_PID=$!
  PIDS+=("$SERVE_PID")
  port=""
  for _ in $(seq 50); do
    port=$(awk '/^listening/ {print $2}' "$M/served.log")
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || die "footage serve did not say where it listens"

  # motion_conf RUN SCENE [OPTION...]: a configuration that changes no
  # default but the input, the hooks, the folders and movie files (off).
  motion_conf() {
    local run=$1 scene=$2 dir=$M/$1
    shift 2
    mkdir -p "$dir/out"
    {
      echo "daemon off"
      echo "target_dir $dir/out"
      echo "netcam_url http://127.0.0.1:$port/$run/$scene"
      echo "movie_output off"
      echo "on_event_start \"$M/hook $dir/$scene.events\""
      echo "on_event_end \"$M/hook $dir/$scene.ends\""
      for o in "$@"; do echo "$o"; done
    } >"$dir/$scene.conf"
  }

  # run_scene SCENE SECONDS: both runs of motion on one scene, until its
  # last frame went out to both and FOOTAGE_TAIL more seconds.
  run_scene() {
    local scene=$1 secs=$2 p60 p5 deadline
    motion_conf gap60 "$scene"
    motion_conf gap5 "$scene" "event_gap 5"
    motion -n -c "$M/gap60/$scene.conf" >"$M/gap60/$scene.log" 2>&1 &
    p60=$!
    motion -n -c "$M/gap5/$scene.conf" >"$M/gap5/$scene.log" 2>&1 &
    p5=$!
    deadline=$(($(date +%s) + ${secs%.*} + 30))
    while [ "$(date +%s)" -lt "$deadline" ]; do
      grep -q "^end /gap60/$scene " "$M/served.log" &&
        grep -q "^end /gap5/$scene " "$M/served.log" && break
      sleep 0.5
    done
    sleep "$FOOTAGE_TAIL"
    stop "$p60"
    stop "$p5"
  }

  # Longest scenes first, so the slots finish together.
  mapfile -t order < <(for f in "$SCENES"/*.mjpeg; do
    n=$(basename "$f" .mjpeg)
    frames=$(ffprobe -v error -f mjpeg -count_packets -select_streams v:0 \
      -show_entries stream=nb_read_packets -of csv=p=0 "$f")
    echo "$((frames / 10)) $n"
  done | sort -rn)
  total=0
  for line in "${order[@]}"; do total=$((total + ${line%% *})); done
  say "motion $MOTION_VERSION: ${#order[@]} scenes in real time, $FOOTAGE_JOBS at a time (${total} s of footage)"
  for line in "${order[@]}"; do
    while [ "$(jobs -rp | wc -l)" -gt "$FOOTAGE_JOBS" ]; do wait -n || true; done
    echo "   motion: ${line#* } (${line%% *} s)" >&2
    run_scene "${line#* }" "${line%% *}" &
    PIDS+=("$!")
  done
  # The server is one of the jobs; wait for the scenes only.
  for p in $(jobs -rp); do [ "$p" = "$SERVE_PID" ] || wait "$p" || true; done
  stop "$SERVE_PID"
fi

# ---------------------------------------------------------------- report
{
  echo "## Detection on real footage"
  echo
  echo "\`scripts/bench --footage\` on $(nproc) cores, $(date -u +%Y-%m-%d);" \
    "an episode counts as found when it starts within 2 s of a span of real motion."
  echo
  cat "$TMP/lookout.md"
  echo
  if [ -n "$MOTION_NOTE" ]; then
    echo "### motion"
    echo
    echo "$MOTION_NOTE"
  else
    "$FOOTAGE" motion --truth "$TRUTH" --served "$M/served.log" --events "$M/gap60" \
      --prefix /gap60 --title "motion $MOTION_VERSION at its defaults (event_gap 60 s)"
    echo
    "$FOOTAGE" motion --truth "$TRUTH" --served "$M/served.log" --events "$M/gap5" \
      --prefix /gap5 --title "motion $MOTION_VERSION at its defaults but event_gap 5 s (lookout's cooldown)"
  fi
  echo
  echo "Wall time: $(($(date +%s) - T_START)) s; load average (1, 5, 15 min) at the start" \
    "$LOAD_START, at the end $(cut -d' ' -f1-3 /proc/loadavg)."
} | tee "$TMP/footage.md"

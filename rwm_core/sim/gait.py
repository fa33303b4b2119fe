"""Data-collection controller: a trotting gait that follows velocity commands with privileged state.

Why a hand-written controller: the world model needs physically consistent locomotion data with a wide spread of
velocities, contacts and torques, and no trained policy exists yet. The controller is a classic model-based trot:

* a gait clock (diagonal pairs LF+RH and LH+RF in anti-phase, duty 0.55, period shrinking with commanded speed);
  stance feet are dragged backwards at the commanded twist, swing feet are placed Raibert-style, correcting the
  measured velocity and yaw-rate error; the command is followed through a rate-limited reference, and a standing
  command stops stepping once all feet are down and the base is slow;
* foot targets are planned in a gravity-aligned, yaw-following frame (so placement does not depend on body tilt),
  then rotated into the tilted base frame;
* a virtual-model layer computes the wrench on the base (height, roll and pitch feedback; velocity and yaw-rate
  tracking) and distributes it over all force components of the stance feet by regularised least squares (with two
  feet on a diagonal, the moment about that diagonal needs horizontal forces); the forces become joint torques via
  the leg Jacobians and are folded into the joint targets (dq = tau / kp), otherwise the kp = 80 legs sag;
* analytic 3-DoF inverse kinematics per leg gives the joint targets; the action is (target - default) / scale plus
  slowly varying (Ornstein-Uhlenbeck) exploration noise whose level the caller sets (data collection redraws it
  with every command).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rwm_core.sim.robot import KP, QuadrupedSim
from rwm_core.tasks import anymal_d_flat as task

# leg phase offsets: LF, LH, RF, RH (diagonals LF+RH, LH+RF)
_PHASE_OFFSET_L = (0.0, 0.5, 0.5, 0.0)
# relative importance of the wrench components (Fx, Fy, Fz, Mx, My, Mz) in the force distribution
_WRENCH_WEIGHTS = np.array([1.0, 1.0, 5.0, 30.0, 30.0, 10.0])


@dataclass
class GaitParams:
    """Gait shape; the collector varies these per command segment for data diversity."""

    period: float = 0.45
    duty: float = 0.55
    height: float = 0.52
    clearance: float = 0.09
    stance_width: float = 0.0  # extra lateral offset of the feet (m)


@dataclass
class Gains:
    """Virtual-model and foot-placement gains."""

    k_height: float = 2500.0
    d_height: float = 250.0
    k_roll: float = 700.0
    d_roll: float = 30.0  # higher values chatter at the 25 Hz Nyquist rate of the 50 Hz loop
    k_pitch: float = 900.0
    d_pitch: float = 80.0
    k_vel: float = 2.5  # horizontal force per unit mass per m/s velocity error
    k_yaw: float = 20.0  # yaw moment per rad/s error
    raibert: float = 0.22  # foot placement per m/s velocity error
    raibert_yaw: float = 0.06
    friction: float = 0.6
    max_horizontal_accel: float = 3.0
    regularisation: float = 0.1
    max_command_accel: float = 2.0  # m/s^2, ramp of the reference velocity
    max_command_yaw_accel: float = 3.0  # rad/s^2
    period_speed_gain: float = 0.1  # s of gait period per m/s of commanded speed
    min_period: float = 0.33
    stop_speed: float = 0.15  # standing: stop stepping below this speed (m/s, + 0.3 * |yaw rate|)
    restep_speed: float = 0.4  # standing: resume stepping above this speed


class TrotController:
    """Trotting controller reading privileged state from a :class:`QuadrupedSim`."""

    def __init__(
        self,
        sim: QuadrupedSim,
        rng: np.random.Generator | None = None,
        noise_level: float = 0.0,
        noise_tau: float = 0.3,
        params: GaitParams | None = None,
        gains: Gains | None = None,
    ) -> None:
        self.sim = sim
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.params = params or GaitParams()
        self.gains = gains or Gains()
        self.noise_level = noise_level
        self.noise_rho = math.exp(-task.STEP_DT / noise_tau)
        m = sim.model
        self.hip = np.array([m.body(f"{leg}_HIP").pos for leg in task.LEGS])  # HAA positions (4, 3)
        self.lat = np.array([m.body(f"{leg}_THIGH").pos[1] for leg in task.LEGS])  # signed HFE offset (4,)
        self.l1 = float(-m.body(f"{task.LEGS[0]}_SHANK").pos[2])
        self.l2 = float(-m.geom(f"{task.LEGS[0]}_foot").pos[2])
        self.knee_sign = np.sign(task.DEFAULT_JOINT_POS[8:12]).astype(np.float64)
        self.side = np.sign(self.lat)
        self.mass = sim.total_mass
        # plain-Python copies for the scalar fast path in act()
        self._hip_l = [tuple(r) for r in self.hip.tolist()]
        self._lat_l = self.lat.tolist()
        self._knee_l = self.knee_sign.tolist()
        self._qadr = sim.qadr.tolist()
        self._default = task.DEFAULT_JOINT_POS.astype(np.float64)
        self._inv_weights = (1.0 / _WRENCH_WEIGHTS).tolist()
        self.reset()

    # ------------------------------------------------------------------ setup
    def reset(self) -> None:
        """Start a new episode: all feet in stance under the hips, clock at a double-stance instant."""
        self.phase = 0.01
        self.command = np.zeros(3)
        self._ref = [0.0, 0.0, 0.0]
        self.standing = True
        self._frozen = True
        self.nominal = self._nominal()
        self._nom_l = [tuple(r) for r in self.nominal[:, :2].tolist()]
        self._anchor_l = list(self._nom_l)
        self._lift_l = list(self._nom_l)
        self._prev_l = list(self._nom_l)
        self.was_stance = [True, True, True, True]
        self.noise = np.zeros(12)

    def _nominal(self) -> np.ndarray:
        n = self.hip.copy()
        n[:, 1] += self.lat + self.side * self.params.stance_width
        n[:, 2] = 0.0
        return n

    def set_command(self, command: np.ndarray, standing: bool | None = None) -> None:
        """Velocity command (vx, vy, yaw rate) in the yaw frame; standing defaults to an all-zero command."""
        self.command = np.asarray(command, dtype=np.float64).copy()
        self.standing = bool(np.all(self.command == 0.0)) if standing is None else standing

    def set_params(self, params: GaitParams) -> None:
        self.params = params
        self.nominal = self._nominal()
        self._nom_l = [tuple(r) for r in self.nominal[:, :2].tolist()]

    # ------------------------------------------------------------ kinematics
    def forward_kinematics(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Foot positions relative to the HAA joints in the base frame (4, 3) and Jacobians (4, 3, 3)."""
        q0, q1, q2 = q[0:4], q[4:8], q[8:12]
        s1, c1 = np.sin(q1), np.cos(q1)
        s12, c12 = np.sin(q1 + q2), np.cos(q1 + q2)
        s0, c0 = np.sin(q0), np.cos(q0)
        x = -self.l1 * s1 - self.l2 * s12
        zp = -self.l1 * c1 - self.l2 * c12
        yp = self.lat
        y = yp * c0 - zp * s0
        z = yp * s0 + zp * c0
        p = np.stack([x, y, z], axis=1)
        jac = np.empty((4, 3, 3))
        jac[:, 0, 0] = 0.0
        jac[:, 1, 0] = -z
        jac[:, 2, 0] = y
        jac[:, 0, 1] = zp
        jac[:, 1, 1] = x * s0
        jac[:, 2, 1] = -x * c0
        jac[:, 0, 2] = -self.l2 * c12
        jac[:, 1, 2] = -s0 * self.l2 * s12
        jac[:, 2, 2] = c0 * self.l2 * s12
        return p, jac

    def inverse_kinematics(self, p: np.ndarray) -> np.ndarray:
        """Joint angles (12, JOINT_NAMES order) putting each foot at p (4, 3), relative to its HAA, base frame."""
        px, py, pz = p[:, 0], p[:, 1], p[:, 2]
        d = self.lat
        r2 = py * py + pz * pz
        zp = -np.sqrt(np.maximum(r2 - d * d, 1e-4))
        q0 = np.arctan2(pz, py) - np.arctan2(zp, d)
        q0 = (q0 + np.pi) % (2 * np.pi) - np.pi
        l1, l2 = self.l1, self.l2
        c2 = np.clip((px * px + zp * zp - l1 * l1 - l2 * l2) / (2 * l1 * l2), -0.99, 0.995)
        q2 = self.knee_sign * np.arccos(c2)
        q1 = np.arctan2(-px, -zp) - np.arctan2(l2 * np.sin(q2), l1 + l2 * np.cos(q2))
        return np.concatenate([q0, q1, q2])

    # ---------------------------------------------------------------- control
    def act(self) -> np.ndarray:
        """Action (12,) for the current simulator state and command.

        Written with Python scalars rather than numpy: with four 3-DoF legs, per-call numpy overhead would dominate
        the cost of a control step (the collector's budget is about 0.15 ms per step in total).
        """
        sim, g, prm = self.sim, self.gains, self.params
        dt = task.STEP_DT
        d = sim.data
        r00, r01, r02, r10, r11, r12, r20, r21, r22 = d.xmat[sim.trunk_id].tolist()
        qpos = d.qpos.tolist()
        qvel = d.qvel.tolist()
        yaw = math.atan2(r10, r00)
        cy, sy = math.cos(yaw), math.sin(yaw)
        # tilt = Rz(yaw)^T R : base frame -> yaw frame
        t00, t01, t02 = cy * r00 + sy * r10, cy * r01 + sy * r11, cy * r02 + sy * r12
        t10, t11, t12 = -sy * r00 + cy * r10, -sy * r01 + cy * r11, -sy * r02 + cy * r12
        t20, t21, t22 = r20, r21, r22
        vx = cy * qvel[0] + sy * qvel[1]
        vy = -sy * qvel[0] + cy * qvel[1]
        vz = qvel[2]
        wbx, wby, wbz = qvel[3], qvel[4], qvel[5]
        wx = t00 * wbx + t01 * wby + t02 * wbz
        wy = t10 * wbx + t11 * wby + t12 * wbz
        wz = t20 * wbx + t21 * wby + t22 * wbz
        height = qpos[2]
        qa = self._qadr

        # the reference twist ramps towards the command (a step change in command would trip the robot)
        ref = self._ref
        lim_v, lim_w = g.max_command_accel * dt, g.max_command_yaw_accel * dt
        cmd_l = self.command.tolist()
        for j, lim in ((0, lim_v), (1, lim_v), (2, lim_w)):
            ref[j] += min(max(cmd_l[j] - ref[j], -lim), lim)
        cvx, cvy, cwz = ref
        # faster commands get shorter strides: the period shrinks with the commanded speed
        period = max(prm.period - g.period_speed_gain * (math.hypot(cvx, cvy) + 0.3 * abs(cwz)), g.min_period)
        duty = prm.duty
        t_stance = period * duty
        was = self.was_stance
        all_stance = was[0] and was[1] and was[2] and was[3]
        # stop stepping only once all feet are down and the base has come (almost) to rest; a push or a
        # drift while standing restarts the trot until the base is slow again
        speed = math.hypot(vx, vy) + 0.3 * abs(wz)
        if not self.standing:
            self._frozen = False
        elif self._frozen:
            self._frozen = speed < g.restep_speed
        else:
            self._frozen = all_stance and speed < g.stop_speed and ref == [0.0, 0.0, 0.0]
        frozen = self._frozen
        if not frozen:
            self.phase = (self.phase + dt / period) % 1.0
        verr_x, verr_y, werr = vx - cvx, vy - cvy, wz - cwz
        l1, l2 = self.l1, self.l2
        h = prm.height
        q_des = [0.0] * 12
        feet = []  # (stance, fx, fy, jacobian rows) per leg
        for i in range(4):
            ph = (self.phase + _PHASE_OFFSET_L[i]) % 1.0
            st = True if frozen else ph < duty
            nx, ny = self._nom_l[i]
            if st and not was[i]:
                self._anchor_l[i] = self._prev_l[i]
            elif not st and was[i]:
                self._lift_l[i] = self._prev_l[i]
            was[i] = st
            if st:
                ax, ay = self._anchor_l[i]
                if frozen:
                    tx, ty = ax, ay
                else:
                    el = min(ph / duty, 1.0) * t_stance
                    tx = ax - (cvx - cwz * ay) * el
                    ty = ay - (cvy + cwz * ax) * el
                tz = -h
            else:
                s_sw = min((ph - duty) / (1.0 - duty), 1.0)
                half = 0.5 * t_stance
                tdx = nx + (cvx - cwz * ny) * half + g.raibert * verr_x - g.raibert_yaw * werr * ny
                tdy = ny + (cvy + cwz * nx) * half + g.raibert * verr_y + g.raibert_yaw * werr * nx
                lx, ly = self._lift_l[i]
                sm = s_sw * s_sw * (3.0 - 2.0 * s_sw)
                tx = lx + (tdx - lx) * sm
                ty = ly + (tdy - ly) * sm
                tz = -h + prm.clearance * math.sin(math.pi * s_sw)
            self._prev_l[i] = (tx, ty)
            # yaw frame -> base frame (tilt^T), relative to the HAA joint
            hx, hy, hz = self._hip_l[i]
            px = t00 * tx + t10 * ty + t20 * tz - hx
            py = t01 * tx + t11 * ty + t21 * tz - hy
            pz = t02 * tx + t12 * ty + t22 * tz - hz
            # inverse kinematics
            lat = self._lat_l[i]
            zp = -math.sqrt(max(py * py + pz * pz - lat * lat, 1e-4))
            a0 = math.atan2(pz, py) - math.atan2(zp, lat)
            a0 = (a0 + math.pi) % (2.0 * math.pi) - math.pi
            c2 = (px * px + zp * zp - l1 * l1 - l2 * l2) / (2.0 * l1 * l2)
            c2 = min(max(c2, -0.99), 0.995)
            a2 = self._knee_l[i] * math.acos(c2)
            a1 = math.atan2(-px, -zp) - math.atan2(l2 * math.sin(a2), l1 + l2 * math.cos(a2))
            q_des[i], q_des[4 + i], q_des[8 + i] = a0, a1, a2
            if st:
                # forward kinematics and Jacobian at the measured joint angles
                q0, q1, q2 = qpos[qa[i]], qpos[qa[4 + i]], qpos[qa[8 + i]]
                s1, c1 = math.sin(q1), math.cos(q1)
                s12, c12 = math.sin(q1 + q2), math.cos(q1 + q2)
                s0, c0 = math.sin(q0), math.cos(q0)
                x = -l1 * s1 - l2 * s12
                zq = -l1 * c1 - l2 * c12
                y = lat * c0 - zq * s0
                z = lat * s0 + zq * c0
                bx, by, bz = x + hx, y + hy, z + hz
                fx = t00 * bx + t01 * by + t02 * bz
                fy = t10 * bx + t11 * by + t12 * bz
                fzp = t20 * bx + t21 * by + t22 * bz
                jac = (0.0, zq, -l2 * c12, -z, x * s0, -s0 * l2 * s12, y, -x * c0, c0 * l2 * s12)
                feet.append((i, fx, fy, fzp, jac))

        # virtual model: distribute the body wrench over the stance feet (min-norm least squares)
        q_target = q_des
        if feet:
            roll = math.atan2(t21, t22)
            pitch = math.asin(max(-1.0, min(1.0, -t20)))
            n = len(feet)
            # desired wrench on the base (yaw frame): velocity / yaw-rate tracking, height and attitude feedback
            ax_ = g.k_vel * (cvx - vx)
            ay_ = g.k_vel * (cvy - vy)
            na = math.hypot(ax_, ay_)
            if na > g.max_horizontal_accel:
                ax_ *= g.max_horizontal_accel / na
                ay_ *= g.max_horizontal_accel / na
            fz_tot = max(self.mass * sim.gravity + g.k_height * (h + 0.03 - height) - g.d_height * vz, 0.0)
            wrench = np.array(
                [
                    self.mass * ax_,
                    self.mass * ay_,
                    fz_tot,
                    -g.k_roll * roll - g.d_roll * wx,
                    -g.k_pitch * pitch - g.d_pitch * wy,
                    g.k_yaw * (cwz - wz),
                ]
            )
            # weighted, regularised least squares over all stance-foot force components (with two feet on a
            # diagonal the moment about that diagonal is only reachable through horizontal forces):
            #   min |S^1/2 (A f - w)|^2 + alpha |f|^2,  A = [[I, I, ...], [[r_1]x, [r_2]x, ...]]
            # solved in its 6x6 dual form f = A^T (A A^T + alpha S^-1)^-1 w, with A A^T built from sums over feet
            sx = sy_ = sz = 0.0
            pxx = pyy = pzz = pxy = pxz = pyz = 0.0
            for f in feet:
                rx, ry, rz = f[1], f[2], f[3]
                sx += rx
                sy_ += ry
                sz += rz
                pxx += rx * rx
                pyy += ry * ry
                pzz += rz * rz
                pxy += rx * ry
                pxz += rx * rz
                pyz += ry * rz
            a = g.regularisation
            iw = self._inv_weights
            # A A^T = [[n I, -[s]x], [[s]x, sum(|r|^2 I - r r^T)]] with s = sum r
            gram = np.array(
                [
                    [n + a * iw[0], 0.0, 0.0, 0.0, sz, -sy_],
                    [0.0, n + a * iw[1], 0.0, -sz, 0.0, sx],
                    [0.0, 0.0, n + a * iw[2], sy_, -sx, 0.0],
                    [0.0, -sz, sy_, pyy + pzz + a * iw[3], -pxy, -pxz],
                    [sz, 0.0, -sx, -pxy, pxx + pzz + a * iw[4], -pyz],
                    [-sy_, sx, 0.0, -pxz, -pyz, pxx + pyy + a * iw[5]],
                ]
            )
            lfx, lfy, lfz, lmx, lmy, lmz = np.linalg.solve(gram, wrench).tolist()
            # f_i = A_i^T lam = lam_F + lam_M x r_i
            forces = [
                (lfx + lmy * f[3] - lmz * f[2], lfy + lmz * f[1] - lmx * f[3], lfz + lmx * f[2] - lmy * f[1])
                for f in feet
            ]
            q_target = list(q_des)
            for (i, _fx, _fy, _fzp, jac), (hx_, hy_, fz) in zip(feet, forces, strict=True):
                fz = max(fz, 5.0)
                nf = math.hypot(hx_, hy_)
                lim = g.friction * fz
                if nf > lim:
                    hx_ *= lim / nf
                    hy_ *= lim / nf
                # force on the base (yaw frame) -> base frame (tilt^T)
                gx = t00 * hx_ + t10 * hy_ + t20 * fz
                gy = t01 * hx_ + t11 * hy_ + t21 * fz
                gz = t02 * hx_ + t12 * hy_ + t22 * fz
                j00, j01, j02, j10, j11, j12, j20, j21, j22 = jac
                q_target[i] -= (j00 * gx + j10 * gy + j20 * gz) / KP
                q_target[4 + i] -= (j01 * gx + j11 * gy + j21 * gz) / KP
                q_target[8 + i] -= (j02 * gx + j12 * gy + j22 * gz) / KP

        action = (np.array(q_target) - self._default) * (1.0 / task.ACTION_SCALE)
        if self.noise_level > 0.0:
            rho = self.noise_rho
            self.noise = rho * self.noise + (self.noise_level * math.sqrt(1.0 - rho * rho)) * self.rng.standard_normal(
                12
            )
            action += self.noise
        return action

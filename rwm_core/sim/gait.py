"""Data-collection controller: a trotting gait that follows velocity commands with privileged state.

Why a hand-written controller: the world model needs physically consistent locomotion data with a wide spread of
velocities, contacts and torques, and no trained policy exists yet. The controller is a classic model-based trot:

* a gait clock (diagonal pairs LF+RH and LH+RF in anti-phase); stance feet are dragged backwards at the commanded
  body velocity (and yaw rate), swing feet are placed Raibert-style, correcting the measured velocity error;
* all foot targets are planned in a gravity-aligned, yaw-following frame as if the base were level at the desired
  height, then rotated into the (tilted) base frame, so leg stiffness itself pulls the base back to level;
* a virtual-model layer computes the ground forces that hold the base up (height, roll, pitch feedback) and push it
  towards the commanded velocity and yaw rate; those forces become joint torques via the leg Jacobians and are folded
  into the joint targets (Δq = τ / kp), otherwise the kp = 80 legs sag under the 42 kg body;
* analytic 3-DoF inverse kinematics per leg gives the joint targets; the action is (target - default) / scale plus
  slowly varying (Ornstein-Uhlenbeck) exploration noise whose level is drawn per episode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rwm_core.sim.robot import KP, QuadrupedSim
from rwm_core.tasks import anymal_d_flat as task

# leg phase offsets: LF, LH, RF, RH (diagonals LF+RH, LH+RF)
_PHASE_OFFSET_L = (0.0, 0.5, 0.5, 0.0)


@dataclass
class GaitParams:
    """Gait shape; the collector varies these per command segment for data diversity."""

    period: float = 0.5
    duty: float = 0.5
    height: float = 0.52
    clearance: float = 0.09
    stance_width: float = 0.0  # extra lateral offset of the feet (m)


@dataclass
class Gains:
    """Virtual-model and foot-placement gains."""

    k_height: float = 2500.0
    d_height: float = 250.0
    k_roll: float = 700.0
    d_roll: float = 60.0
    k_pitch: float = 900.0
    d_pitch: float = 80.0
    k_vel: float = 2.5  # horizontal force per unit mass per m/s velocity error
    k_yaw: float = 12.0  # yaw moment per rad/s error
    raibert: float = 0.12  # foot placement per m/s velocity error
    raibert_yaw: float = 0.06
    friction: float = 0.6
    max_horizontal_accel: float = 3.0


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
        self.reset()

    # ------------------------------------------------------------------ setup
    def reset(self) -> None:
        """Start a new episode: all feet in stance under the hips, clock at a double-stance instant."""
        self.phase = 0.01
        self.command = np.zeros(3)
        self.standing = True
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

        cvx, cvy, cwz = self.command.tolist()
        period, duty = prm.period, prm.duty
        t_stance = period * duty
        was = self.was_stance
        all_stance = was[0] and was[1] and was[2] and was[3]
        frozen = self.standing and all_stance
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
                jac = (0.0, zq, -l2 * c12, -z, x * s0, -s0 * l2 * s12, y, -x * c0, c0 * l2 * s12)
                feet.append((i, fx, fy, jac))

        # virtual model: distribute the body wrench over the stance feet (min-norm least squares)
        q_target = q_des
        if feet:
            roll = math.atan2(t21, t22)
            pitch = math.asin(max(-1.0, min(1.0, -t20)))
            fz_tot = max(
                self.mass * sim.gravity + g.k_height * (h + 0.03 - height) - g.d_height * vz, 0.0
            )
            mx = -g.k_roll * roll - g.d_roll * wx
            my = -g.k_pitch * pitch - g.d_pitch * wy
            n = len(feet)
            sx = sum(f[1] for f in feet)
            sy_ = sum(f[2] for f in feet)
            sxx = sum(f[1] * f[1] for f in feet)
            syy = sum(f[2] * f[2] for f in feet)
            sxy = sum(f[1] * f[2] for f in feet)
            eps = 1e-3
            # M = A A^T with A rows [1, y, -x]; solve M lam = b by Cramer's rule
            m00, m01, m02 = n + eps, sy_, -sx
            m11, m12, m22 = syy + eps, -sxy, sxx + eps
            det = m00 * (m11 * m22 - m12 * m12) - m01 * (m01 * m22 - m12 * m02) + m02 * (m01 * m12 - m11 * m02)
            i00 = (m11 * m22 - m12 * m12) / det
            i01 = (m02 * m12 - m01 * m22) / det
            i02 = (m01 * m12 - m02 * m11) / det
            i11 = (m00 * m22 - m02 * m02) / det
            i12 = (m01 * m02 - m00 * m12) / det
            i22 = (m00 * m11 - m01 * m01) / det
            l0 = i00 * fz_tot + i01 * mx + i02 * my
            la = i01 * fz_tot + i11 * mx + i12 * my
            lb = i02 * fz_tot + i12 * mx + i22 * my
            ax_ = g.k_vel * (cvx - vx)
            ay_ = g.k_vel * (cvy - vy)
            na = math.hypot(ax_, ay_)
            if na > g.max_horizontal_accel:
                ax_ *= g.max_horizontal_accel / na
                ay_ *= g.max_horizontal_accel / na
            r2 = sxx + syy
            mz = g.k_yaw * (cwz - wz) / max(r2, 1e-6)
            share = self.mass / n
            q_target = list(q_des)
            for i, fx, fy, jac in feet:
                fz = max(l0 + la * fy - lb * fx, 5.0)
                hx_ = share * ax_ - mz * fy
                hy_ = share * ay_ + mz * fx
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

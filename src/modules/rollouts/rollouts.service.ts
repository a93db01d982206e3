import { Injectable } from '@nestjs/common';
import { AppError, ErrorCode } from '../../common/errors.js';
import type { CreateRolloutDto } from './dto/rollout.dto.js';
import { RolloutEvaluator } from './rollout-evaluator.service.js';
import { RolloutReleaser } from './rollout-releaser.service.js';
import { nodeTask } from './rollout-task.js';
import type { RolloutCounts, RolloutInput, RolloutNodeRow, RolloutRow } from './rollout.types.js';
import { RolloutsRepository } from './rollouts.repository.js';

/** The most per-node rows one GET answers. */
const NODES_SHOWN = 10_000;

/** Create, read and cancel rollouts; releasing and judging them is the releaser's and the evaluator's. */
@Injectable()
export class RolloutsService {
  constructor(
    private readonly repo: RolloutsRepository,
    private readonly releaser: RolloutReleaser,
    private readonly evaluator: RolloutEvaluator,
  ) {}

  /**
   * Checks what the DTO cannot see alone (a target that names something; an exponential start
   * not above the cap), then writes the rollout and its queued nodes in one transaction.
   */
  async create(dto: CreateRolloutDto): Promise<RolloutRow> {
    const tags = unique(dto.target.tags ?? []);
    const nodeIds = unique(dto.target.node_ids ?? []);
    if (tags.length === 0 && nodeIds.length === 0)
      throw AppError.validation('target', 'give tags or node_ids (a rollout targets at least one node)');
    const exp = dto.rate?.exponential;
    if (dto.rate && exp && exp.base_per_minute > dto.rate.per_minute)
      throw AppError.validation('rate.exponential.base_per_minute', 'must not be above rate.per_minute (the cap)');
    // The task as each node will get it: a problem is a 400 now, not a refusal at every release.
    nodeTask({ ...dto.task }, '00000000-0000-4000-8000-000000000000', dto.name, nodeIds[0] ?? 'node');
    const includeFuture = dto.include_future_nodes ?? false;
    if (includeFuture && tags.length === 0)
      throw AppError.validation('include_future_nodes', 'future nodes join by target.tags: give tags');
    const input: RolloutInput = {
      name: dto.name,
      task: { ...dto.task },
      target_tags: tags,
      target_node_ids: nodeIds,
      rate: dto.rate ? { per_minute: dto.rate.per_minute, ...(exp ? { exponential: { ...exp } } : {}) } : null,
      abort: (dto.abort ?? []).map((a) => ({ ...a })),
      include_future_nodes: includeFuture,
    };
    const outcome = await this.repo.create(input, includeFuture);
    if ('missing' in outcome)
      throw AppError.validation('target.node_ids', `unknown node(s): ${outcome.missing.slice(0, 10).join(', ')}`);
    if ('empty' in outcome)
      throw AppError.validation('target', 'matches no node (set include_future_nodes to wait for nodes)');
    this.releaser.wake();
    return outcome.row;
  }

  /** A page of rollouts with their live counts (one grouped query for the page). */
  async list(
    limit: number,
    offset: number,
  ): Promise<{ rows: RolloutRow[]; total: number; counts: Map<string, RolloutCounts> }> {
    const { rows, total } = await this.repo.list(limit, offset);
    return { rows, total, counts: await this.repo.countsOf(rows.map((r) => r.id)) };
  }

  async get(id: string): Promise<{ row: RolloutRow; counts: RolloutCounts; nodes: RolloutNodeRow[] }> {
    const row = await this.repo.findById(id);
    if (!row) throw AppError.notFound('Rollout', id);
    const [counts, nodes] = await Promise.all([this.repo.counts(id), this.repo.nodes(id, NODES_SHOWN)]);
    return { row, counts, nodes };
  }

  /** Ends an in-progress rollout: nothing more is released, its open tasks are cancelled. */
  async cancel(id: string, reason?: string): Promise<RolloutRow> {
    const outcome = await this.repo.evaluate(id, () => ({
      status: 'cancelled',
      reason: reason ?? 'cancelled by a client',
    }));
    if (!outcome) {
      const row = await this.repo.findById(id);
      if (!row) throw AppError.notFound('Rollout', id);
      throw new AppError(ErrorCode.CONFLICT, `Rollout is already ${row.status}`, { state: row.status });
    }
    await this.evaluator.settle(outcome);
    return outcome.row;
  }
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}

/**
 * The vocabulary of the service model (botocore JSON), as data: shapes refer to each
 * other by name; 'string', 'integer', 'boolean' and 'timestamp' are the unconstrained
 * scalars. Constraints are the model's own (min/max are lengths for strings and lists,
 * values for integers).
 */
export type ModelShape =
  | {
      readonly type: 'string';
      readonly min?: number;
      readonly max?: number;
      readonly pattern?: string;
      readonly enum?: readonly string[];
    }
  | { readonly type: 'integer'; readonly min?: number; readonly max?: number }
  | { readonly type: 'boolean' }
  | { readonly type: 'timestamp' }
  | { readonly type: 'list'; readonly member: string; readonly min?: number; readonly max?: number }
  | {
      readonly type: 'structure';
      readonly members: Readonly<Record<string, string>>;
      readonly required?: readonly string[];
    };

export const SCALARS = ['string', 'integer', 'boolean', 'timestamp'] as const;
